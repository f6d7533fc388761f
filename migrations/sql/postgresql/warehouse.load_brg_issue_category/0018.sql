-- warehouse.load_brg_issue_category
-- Purpose:    the issue <-> category bridge: for each issue with text analytics, one row per role
--             (discipline, primary, secondary) naming the category the current analytics give it, with the
--             category's current dim.issue_category version (-1 when the id is unknown to the dimension).
--             Analytics are matched to issues by (source system, tracker issue id): ProcessedIssues has no
--             project (source-contract.md: an issue has at most one analytics row).
--             Incremental: the rows of issues whose analytics changed after p_since_run_id are
--             replaced (a role whose category became NULL loses its row), and so are those of issues with
--             a version written since (a new key: an issue moved to another tracker project keeps its
--             analytics) and those pointing at a category version no longer current (a category renamed).
-- Parameters: p_run_id; p_as_of, p_time_zone (unused; the common fact signature); p_since_run_id: the last
--             run whose fact phase committed (NULL: never), given by the run log.
--             rows_read (rows derived), rows_inserted, rows_deleted (INOUT, leave out): for the run log.
-- Reads:      dim.issue_analytics, dim.issue, dim.issue_key, dim.issue_category, brg.issue_category.
--             Writes: brg.issue_category.
CREATE OR REPLACE PROCEDURE warehouse.load_brg_issue_category(
    p_run_id bigint,
    p_as_of timestamptz,
    p_time_zone text,
    p_since_run_id bigint,
    INOUT rows_read bigint DEFAULT 0,
    INOUT rows_inserted bigint DEFAULT 0,
    INOUT rows_deleted bigint DEFAULT 0
)
LANGUAGE plpgsql
-- its own search_path: the caller's (dim ahead of pg_catalog, say) cannot change what a name means
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_last_run bigint := p_since_run_id;
BEGIN

    DROP TABLE IF EXISTS pg_temp.bridge_issue, pg_temp.bridge_new;
    -- the issues to derive again (all of them the first time), with their keys: those whose analytics
    -- changed (deleted ones included: they lose their rows); those with an issue version written since (an
    -- issue moved to another tracker project is a new key, whose analytics are as old as the issue); and
    -- those whose rows point at a category version that is no longer current (a category renamed)
    CREATE TEMP TABLE bridge_issue ON COMMIT DROP AS
    WITH changed_issue AS (
        SELECT k.issue_key
        FROM dim.issue_analytics AS a
        JOIN dim.issue_key AS k ON k.source_system = a.source_system AND k.source_issue_id = a.source_issue_id
        WHERE a.is_current AND a.issue_analytics_sk <> -1 AND a.run_id > v_last_run
        UNION
        SELECT k.issue_key
        FROM dim.issue AS d
        JOIN dim.issue_key AS k
            ON k.source_system = d.source_system AND k.source_project_id = d.source_project_id
            AND k.source_issue_id = d.source_issue_id
        WHERE d.issue_sk <> -1 AND d.run_id > v_last_run
        UNION
        SELECT b.issue_key
        FROM dim.issue_category AS c
        JOIN brg.issue_category AS b ON b.category_id = c.category_id
        WHERE c.is_current AND c.run_id > v_last_run AND b.issue_category_sk <> c.issue_category_sk
    )

    SELECT k.issue_key, a.is_deleted, a.discipline_category_id, a.primary_category_id, a.secondary_category_id
    FROM dim.issue_analytics AS a
    JOIN dim.issue_key AS k ON k.source_system = a.source_system AND k.source_issue_id = a.source_issue_id
    WHERE a.is_current AND a.issue_analytics_sk <> -1
        AND (v_last_run IS NULL OR k.issue_key IN (SELECT c.issue_key FROM changed_issue AS c));
    ANALYZE pg_temp.bridge_issue;  -- a two-text-column join leaves the planner guessing its size

    CREATE TEMP TABLE bridge_new ON COMMIT DROP AS
    SELECT b.issue_key, r.category_role::varchar(12) AS category_role, r.category_id,
        COALESCE(cat.issue_category_sk, -1) AS issue_category_sk
    FROM pg_temp.bridge_issue AS b
    CROSS JOIN LATERAL (
        VALUES ('discipline', b.discipline_category_id), ('primary', b.primary_category_id),
            ('secondary', b.secondary_category_id)
    ) AS r (category_role, category_id)
    LEFT JOIN dim.issue_category AS cat ON cat.category_id = r.category_id AND cat.is_current
    WHERE NOT b.is_deleted AND r.category_id IS NOT NULL;
    ANALYZE pg_temp.bridge_new;
    SELECT count(*) INTO rows_read FROM pg_temp.bridge_new;

    DELETE FROM brg.issue_category AS b
    USING pg_temp.bridge_issue AS c
    WHERE b.issue_key = c.issue_key
        AND NOT EXISTS (
            SELECT 1 FROM pg_temp.bridge_new AS n
            WHERE n.issue_key = b.issue_key AND n.category_role = b.category_role AND n.category_id = b.category_id
                AND n.issue_category_sk = b.issue_category_sk
        );
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;

    INSERT INTO brg.issue_category (issue_key, category_role, category_id, issue_category_sk, run_id)
    SELECT issue_key, category_role, category_id, issue_category_sk, p_run_id
    FROM pg_temp.bridge_new
    ORDER BY issue_key, category_role
    ON CONFLICT (issue_key, category_role) DO NOTHING;
    GET DIAGNOSTICS rows_inserted = ROW_COUNT;
    IF rows_inserted > 10000 THEN
        -- a first load: statistics taken while the table was empty would make the next run's joins
        -- against it nested loops over every row
        ANALYZE brg.issue_category;
    END IF;
END;
$$;
