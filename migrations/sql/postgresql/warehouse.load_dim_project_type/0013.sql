-- warehouse.load_dim_project_type
-- Purpose:    SCD2 history of project types. Full compare (no change column).
-- Parameters: p_run_id: rows of stg.project_types staged by this run are loaded; p_as_of: the run's as-of
--             instant. rows_inserted, rows_updated, rows_closed, rows_deleted (INOUT, leave out):
--             counts from warehouse.merge_scd2 for the run log.
-- Reads:      stg.project_types. Writes: dim.project_type.
CREATE OR REPLACE PROCEDURE warehouse.load_dim_project_type(
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
    CALL warehouse.prepare_incoming('project_type');

    INSERT INTO pg_temp.incoming (type_id, type_name, is_deleted, change_at, first_seen_from)
    SELECT type_id, type_name, FALSE, p_as_of, NULL
    FROM stg.project_types
    WHERE run_id = p_run_id;

    CALL warehouse.merge_scd2(
        'project_type', ARRAY['type_id'], TRUE, p_as_of, p_run_id, rows_inserted, rows_updated, rows_closed, rows_deleted
    );
END;
$$;
