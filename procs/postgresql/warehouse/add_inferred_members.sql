-- warehouse.add_inferred_members
-- Purpose:    business-rules.md: "a reference to a key the dimension has not seen yet creates an inferred
--             member that the real row later completes". For each reference between dimensions (an issue's
--             project, a service's project, a review's service, a project's client and type, the assigned
--             user of a service or review, an analytics row's categories, a category's parent), a key that a
--             current row refers to and the parent dimension has never held gets a current inferred row:
--             valid from the beginning of time, attributes NULL, is_inferred. Facts then point at it, not at
--             the unknown member, and warehouse.merge_scd2 completes it in place (same surrogate key) when the
--             real row arrives (every key keeps one current row, so the current-key index answers "never
--             held"). Such a key appears when a child row is pulled after its parent's pull missed
--             the parent (created in between) or the parent never reaches the source's table.
--             Incremental: only child versions written after p_since_run_id are read.
--             Runs first among the fact steps (after every dimension), so the facts find the members.
-- Parameters: p_run_id; p_as_of, p_time_zone (unused; the common fact signature); p_since_run_id: the
--             last run whose fact phase committed (NULL: never), given by the run log.
--             rows_read, rows_inserted (INOUT, leave out): inferred members computed and created.
-- Reads:      dim.*. Writes: dim.project, dim.service, dim.client, dim.project_type,
--             dim.app_user, dim.issue_category (inferred rows only).
CREATE OR REPLACE PROCEDURE warehouse.add_inferred_members(
    p_run_id bigint,
    p_as_of timestamptz,
    p_time_zone text,
    p_since_run_id bigint,
    INOUT rows_read bigint DEFAULT 0,
    INOUT rows_inserted bigint DEFAULT 0
)
LANGUAGE plpgsql
-- its own search_path: the caller's (dim ahead of pg_catalog, say) cannot change what a name means
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_last_run bigint := p_since_run_id;
    v_reference record;
    v_count bigint;
BEGIN
    -- children before parents: a review's inferred service has no project yet, so nothing cascades
    FOR v_reference IN
        SELECT child, child_column, parent, parent_key
        FROM (VALUES
            (1, 'review', 'service_id', 'service', 'service_id'),
            (2, 'issue', 'project_id', 'project', 'project_id'),
            (3, 'service', 'project_id', 'project', 'project_id'),
            (4, 'project', 'client_id', 'client', 'client_id'),
            (5, 'project', 'type_id', 'project_type', 'type_id'),
            (6, 'service', 'assigned_user_id', 'app_user', 'user_id'),
            (7, 'review', 'assigned_user_id', 'app_user', 'user_id'),
            (8, 'issue_analytics', 'discipline_category_id', 'issue_category', 'category_id'),
            (9, 'issue_analytics', 'primary_category_id', 'issue_category', 'category_id'),
            (10, 'issue_analytics', 'secondary_category_id', 'issue_category', 'category_id'),
            (11, 'issue_category', 'parent_category_id', 'issue_category', 'category_id')
        ) AS r (position, child, child_column, parent, parent_key)
        ORDER BY position
    LOOP
        EXECUTE format(
            'INSERT INTO dim.%1$I (%2$I, is_deleted, row_hash, valid_from, valid_to, is_current, is_inferred, run_id) '
            'SELECT DISTINCT c.%3$I, FALSE, 0, timestamptz ''1900-01-01 00:00:00+00'', '
            'timestamptz ''9999-12-31 00:00:00+00'', TRUE, TRUE, $1 '
            'FROM dim.%4$I AS c '
            'WHERE c.is_current AND NOT c.is_deleted AND c.%3$I IS NOT NULL AND c.%5$I <> -1 '
            'AND ($2 IS NULL OR c.run_id > $2) '
            'AND NOT EXISTS (SELECT 1 FROM dim.%1$I AS p WHERE p.%2$I = c.%3$I AND p.is_current)',
            v_reference.parent, v_reference.parent_key, v_reference.child_column, v_reference.child,
            v_reference.child || '_sk'
        ) USING p_run_id, v_last_run;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        rows_inserted := rows_inserted + v_count;
    END LOOP;
    rows_read := rows_inserted;  -- every member computed is new: the query keeps only keys never held
END;
$$;
