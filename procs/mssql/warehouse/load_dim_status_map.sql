-- warehouse.load_dim_status_map
-- Purpose:    SCD2 history of the raw-to-normalized issue status map. Full compare.
--             T-SQL: #incoming is created here, not by a helper procedure, because a temporary
--             table lives only as long as the procedure that created it.
-- Parameters: @p_run_id: rows of stg.status_map staged by this run are loaded; @p_as_of: the run's as-of
--             instant.
-- Returns:    one row (rows_inserted, rows_updated, rows_closed, rows_deleted) for the run log.
-- Reads:      stg.status_map. Writes: dim.status_map.
CREATE OR ALTER PROCEDURE warehouse.load_dim_status_map
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
        source_system, raw_status, normalized_status, is_closed, is_deleted,
        CAST(NULL AS DATETIMEOFFSET) AS change_at,
        CAST(NULL AS DATETIMEOFFSET) AS first_seen_from
    INTO #incoming
    FROM dim.status_map;

    INSERT INTO #incoming (
        source_system, raw_status, normalized_status, is_closed, is_deleted, change_at, first_seen_from
    )
    SELECT source_system, raw_status, normalized_status, is_closed, CAST(0 AS BIT), @p_as_of, NULL
    FROM stg.status_map
    WHERE run_id = @p_run_id;

    EXEC warehouse.merge_scd2
        @p_dimension = N'status_map',
        @p_key_columns = N'source_system,raw_status',
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
