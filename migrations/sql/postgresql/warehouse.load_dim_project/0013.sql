-- warehouse.load_dim_project
-- Purpose:    SCD2 history of projects. Full compare: updated_at is NULL on insert and only
--             sometimes maintained, so it is not trusted. Children (services, issues) refer to the
--             durable project_id, so a renamed project re-versions only itself.
-- Parameters: p_run_id: rows of stg.projects staged by this run are loaded; p_as_of: the run's as-of
--             instant. rows_inserted, rows_updated, rows_closed, rows_deleted (INOUT, leave out):
--             counts from warehouse.merge_scd2 for the run log.
-- Reads:      stg.projects. Writes: dim.project.
CREATE OR REPLACE PROCEDURE warehouse.load_dim_project(
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
    CALL warehouse.prepare_incoming('project');

    INSERT INTO pg_temp.incoming (
        project_id, project_name, client_id, type_id, status, priority, start_date, end_date, area_hectares,
        city, state, contract_value, agreed_fee, created_at, is_deleted, change_at, first_seen_from
    )
    SELECT
        project_id, project_name, client_id, type_id, status, priority, start_date, end_date, area_hectares,
        city, state, contract_value, agreed_fee, created_at AT TIME ZONE time_zone, FALSE, p_as_of,
        created_at AT TIME ZONE time_zone
    FROM stg.projects
    WHERE run_id = p_run_id;

    CALL warehouse.merge_scd2(
        'project', ARRAY['project_id'], TRUE, p_as_of, p_run_id, rows_inserted, rows_updated, rows_closed, rows_deleted
    );
END;
$$;
