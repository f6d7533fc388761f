-- warehouse.load_dim_issue_category
-- Purpose:    SCD2 history of the three-level issue category hierarchy (discipline, type,
--             sub-type), incremental on updated_at. discipline_category_id is the level-1 ancestor,
--             found through staged rows or, for parents not changed in this run, the dimension.
-- Parameters: p_run_id: rows of stg.issue_categories staged by this run are loaded; p_as_of: the run's as-of
--             instant. rows_inserted, rows_updated, rows_closed, rows_deleted (INOUT, leave out):
--             counts from warehouse.merge_scd2 for the run log.
-- Reads:      stg.issue_categories, dim.issue_category. Writes: dim.issue_category.
CREATE OR REPLACE PROCEDURE warehouse.load_dim_issue_category(
    p_run_id bigint,
    p_as_of timestamptz,
    INOUT rows_inserted bigint DEFAULT 0,
    INOUT rows_updated bigint DEFAULT 0,
    INOUT rows_closed bigint DEFAULT 0,
    INOUT rows_deleted bigint DEFAULT 0
)
LANGUAGE plpgsql
-- its own search_path: the caller's (dim ahead of pg_catalog, say) cannot change what a name means
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CALL warehouse.prepare_incoming('issue_category');

    WITH staged AS (
        SELECT category_id, category_name, parent_category_id, category_level, is_active, created_at, updated_at,
            time_zone
        FROM stg.issue_categories
        WHERE run_id = p_run_id
    ),

    known_parents AS (
        SELECT category_id, parent_category_id FROM staged
        UNION ALL
        SELECT d.category_id, d.parent_category_id
        FROM dim.issue_category AS d
        WHERE d.is_current AND NOT EXISTS (SELECT 1 FROM staged AS s WHERE s.category_id = d.category_id)
    )

    INSERT INTO pg_temp.incoming (
        category_id, category_name, parent_category_id, category_level, discipline_category_id, is_active,
        created_at, is_deleted, change_at, first_seen_from
    )
    SELECT
        s.category_id, s.category_name, s.parent_category_id, s.category_level,
        CASE s.category_level WHEN 1 THEN s.category_id WHEN 2 THEN s.parent_category_id
            ELSE parent.parent_category_id END,
        s.is_active, s.created_at AT TIME ZONE s.time_zone, FALSE, s.updated_at AT TIME ZONE s.time_zone,
        s.created_at AT TIME ZONE s.time_zone
    FROM staged AS s
    LEFT JOIN known_parents AS parent ON parent.category_id = s.parent_category_id;

    CALL warehouse.merge_scd2(
        'issue_category', ARRAY['category_id'], FALSE, p_as_of, p_run_id, rows_inserted, rows_updated, rows_closed, rows_deleted
    );
END;
$$;
