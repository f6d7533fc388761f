-- warehouse.load_dim_project
-- Purpose:    SCD2 history of projects. Full compare: updated_at is NULL on insert and only
--             sometimes maintained, so it is not trusted. Children (services, issues) refer to the
--             durable project_id, so a renamed project re-versions only itself.
--             T-SQL: #incoming is created here, not by a helper procedure, because a temporary
--             table lives only as long as the procedure that created it.
-- Parameters: @p_run_id: rows of stg.projects staged by this run are loaded; @p_as_of: the run's as-of
--             instant.
-- Returns:    one row (rows_inserted, rows_updated, rows_closed, rows_deleted) for the run log.
-- Reads:      stg.projects. Writes: dim.project.
CREATE OR ALTER PROCEDURE warehouse.load_dim_project
    @p_run_id BIGINT,
    @p_as_of DATETIMEOFFSET
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    DECLARE @rows_inserted BIGINT = 0;
    DECLARE @rows_updated BIGINT = 0;
    DECLARE @rows_closed BIGINT = 0;
    DECLARE @rows_deleted BIGINT = 0;

    SELECT TOP (0)
        project_id, project_name, client_id, type_id, status, priority, start_date, end_date, area_hectares,
        city, state, contract_value, agreed_fee, created_at, is_deleted,
        CAST(NULL AS DATETIMEOFFSET) AS change_at,
        CAST(NULL AS DATETIMEOFFSET) AS first_seen_from
    INTO #incoming
    FROM dim.project;

    INSERT INTO #incoming (
        project_id, project_name, client_id, type_id, status, priority, start_date, end_date, area_hectares,
        city, state, contract_value, agreed_fee, created_at, is_deleted, change_at, first_seen_from
    )
    SELECT
        project_id, project_name, client_id, type_id, status, priority, start_date, end_date, area_hectares,
        city, state, contract_value, agreed_fee, created_at AT TIME ZONE time_zone AT TIME ZONE 'UTC', CAST(0 AS BIT), @p_as_of,
        created_at AT TIME ZONE time_zone AT TIME ZONE 'UTC'
    FROM stg.projects
    WHERE run_id = @p_run_id;

    EXEC warehouse.merge_scd2
        @p_dimension = N'project',
        @p_key_columns = N'project_id',
        @p_full_compare = 1,
        @p_as_of = @p_as_of,
        @p_run_id = @p_run_id,
        @rows_inserted = @rows_inserted OUTPUT,
        @rows_updated = @rows_updated OUTPUT,
        @rows_closed = @rows_closed OUTPUT,
        @rows_deleted = @rows_deleted OUTPUT;

    SELECT
        @rows_inserted AS rows_inserted,
        @rows_updated AS rows_updated,
        @rows_closed AS rows_closed,
        @rows_deleted AS rows_deleted;
END
