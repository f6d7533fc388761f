-- warehouse.load_dim_app_user
-- Purpose:    SCD2 history of application users. Full compare (created_at only); a new user's
--             history starts at its created_at (converted to UTC).
--             T-SQL: #incoming is created here, not by a helper procedure, because a temporary
--             table lives only as long as the procedure that created it.
-- Parameters: @p_run_id: rows of stg.users staged by this run are loaded; @p_as_of: the run's as-of
--             instant.
-- Returns:    one row (rows_inserted, rows_updated, rows_closed, rows_deleted) for the run log.
-- Reads:      stg.users. Writes: dim.app_user.
CREATE OR ALTER PROCEDURE warehouse.load_dim_app_user
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
        user_id, name, role, email, created_at, is_deleted,
        CAST(NULL AS DATETIMEOFFSET) AS change_at,
        CAST(NULL AS DATETIMEOFFSET) AS first_seen_from
    INTO #incoming
    FROM dim.app_user;

    INSERT INTO #incoming (user_id, name, role, email, created_at, is_deleted, change_at, first_seen_from)
    SELECT
        user_id, name, role, email, created_at AT TIME ZONE time_zone AT TIME ZONE 'UTC', CAST(0 AS BIT), @p_as_of,
        created_at AT TIME ZONE time_zone AT TIME ZONE 'UTC'
    FROM stg.users
    WHERE run_id = @p_run_id;

    EXEC warehouse.merge_scd2
        @p_dimension = N'app_user',
        @p_key_columns = N'user_id',
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
