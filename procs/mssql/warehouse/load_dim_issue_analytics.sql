-- warehouse.load_dim_issue_analytics
-- Purpose:    SCD2 history of the text analytics of each issue, incremental on processed_at
--             (the source server's local time, converted to UTC). Every re-processing that changes
--             a value is a new version.
--             T-SQL: #incoming is created here, not by a helper procedure, because a temporary
--             table lives only as long as the procedure that created it.
-- Parameters: @p_run_id: rows of stg.processed_issues staged by this run are loaded; @p_as_of: the run's as-of
--             instant.
-- Returns:    one row (rows_inserted, rows_updated, rows_closed, rows_deleted) for the run log.
-- Reads:      stg.processed_issues. Writes: dim.issue_analytics.
CREATE OR ALTER PROCEDURE warehouse.load_dim_issue_analytics
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
        source_system, source_issue_id, urgency_score, complexity_score, sentiment_score,
        categorization_confidence, discipline_category_id, primary_category_id, secondary_category_id,
        resolution_days, is_recurring, comment_count, processed_at, processing_version, is_deleted,
        CAST(NULL AS DATETIMEOFFSET) AS change_at,
        CAST(NULL AS DATETIMEOFFSET) AS first_seen_from
    INTO #incoming
    FROM dim.issue_analytics;

    INSERT INTO #incoming (
        source_system, source_issue_id, urgency_score, complexity_score, sentiment_score,
        categorization_confidence, discipline_category_id, primary_category_id, secondary_category_id,
        resolution_days, is_recurring, comment_count, processed_at, processing_version, is_deleted, change_at,
        first_seen_from
    )
    SELECT
        source, source_issue_id, urgency_score, complexity_score, sentiment_score, categorization_confidence,
        discipline_category_id, primary_category_id, secondary_category_id, resolution_days, is_recurring,
        comment_count, processed_at AT TIME ZONE time_zone AT TIME ZONE 'UTC', processing_version, CAST(0 AS BIT),
        processed_at AT TIME ZONE time_zone AT TIME ZONE 'UTC', processed_at AT TIME ZONE time_zone AT TIME ZONE 'UTC'
    FROM stg.processed_issues
    WHERE run_id = @p_run_id;

    EXEC warehouse.merge_scd2
        @p_dimension = N'issue_analytics',
        @p_key_columns = N'source_system,source_issue_id',
        @p_full_compare = 0,
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
