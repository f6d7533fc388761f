-- warehouse.load_fact_review
-- Purpose:    the review accumulating snapshot: one row per review, updated in place as the review
--             progresses (same rules as the PostgreSQL version): completed <=> status in (completed,
--             report_issued, closed); cancelled reviews count in no total; overdue <=> not completed, not
--             cancelled, and COALESCE(due_date, planned_date) before the as-of date in the business time
--             zone; planned-vs-actual days = local date of actual_issued_at - planned_date. Deleted
--             reviews keep their row, flagged. Only rows whose values change are written.
--             T-SQL: @p_time_zone is a Windows zone name (sys.time_zone_info).
-- Parameters: @p_run_id; @p_since_run_id: the last run whose fact phase committed (NULL: never),
--             given by the run log; @p_as_of: the run's as-of instant; @p_time_zone: the business time zone.
-- Returns:    one row (rows_read, rows_inserted, rows_updated) for the run log.
-- Reads:      dim.review, dim.service, dim.project, dim.date. Writes: fact.review.
CREATE OR ALTER PROCEDURE warehouse.load_fact_review
    @p_run_id BIGINT,
    @p_as_of DATETIMEOFFSET,
    @p_time_zone NVARCHAR(64),
    @p_since_run_id BIGINT = NULL
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    DECLARE @rows_read BIGINT = 0;
    DECLARE @rows_inserted BIGINT = 0;
    DECLARE @rows_updated BIGINT = 0;
    DECLARE @as_of_date DATE = CAST(@p_as_of AT TIME ZONE @p_time_zone AS DATE);
    DECLARE @as_of_date_key INT = CAST(CONVERT(CHAR(8), @as_of_date, 112) AS INT);

    WITH current_review AS (
        SELECT
            r.*,
            CASE WHEN r.status IN (N'completed', N'report_issued', N'closed') THEN 1 ELSE 0 END AS completed,
            CASE WHEN r.status = N'cancelled' THEN 1 ELSE 0 END AS cancelled,
            CAST(r.actual_issued_at AT TIME ZONE @p_time_zone AS DATE) AS issued_date
        FROM dim.review AS r
        WHERE r.is_current = 1 AND r.review_sk <> -1
    ),

    measured AS (
        SELECT
            r.review_id,
            r.review_sk,
            COALESCE(s.service_sk, -1) AS service_sk,
            COALESCE(p.project_sk, -1) AS project_sk,
            COALESCE(pd.date_key, -1) AS planned_date_key,
            COALESCE(dd.date_key, -1) AS due_date_key,
            COALESCE(ad.date_key, -1) AS issued_date_key,
            r.cycle_no,
            CAST(r.status AS NVARCHAR(20)) AS status,
            CAST(CASE WHEN r.completed = 1 AND r.is_deleted = 0 THEN 1 ELSE 0 END AS BIT) AS is_completed,
            CAST(CASE WHEN r.cancelled = 1 AND r.is_deleted = 0 THEN 1 ELSE 0 END AS BIT) AS is_cancelled,
            r.is_deleted,
            CAST(CASE WHEN r.completed = 0 AND r.cancelled = 0 AND r.is_deleted = 0
                AND COALESCE(r.due_date, r.planned_date) < @as_of_date THEN 1 ELSE 0 END AS BIT) AS is_overdue,
            CASE WHEN r.completed = 0 AND r.cancelled = 0 AND r.is_deleted = 0
                AND COALESCE(r.due_date, r.planned_date) < @as_of_date
                THEN DATEDIFF(DAY, COALESCE(r.due_date, r.planned_date), @as_of_date) END AS days_overdue,
            DATEDIFF(DAY, r.planned_date, r.issued_date) AS planned_vs_actual_days,
            r.weight_factor
        FROM current_review AS r
        LEFT JOIN dim.service AS s ON s.service_id = r.service_id AND s.is_current = 1
        LEFT JOIN dim.project AS p ON p.project_id = s.project_id AND p.is_current = 1
        LEFT JOIN dim.date AS pd ON pd.full_date = r.planned_date
        LEFT JOIN dim.date AS dd ON dd.full_date = r.due_date
        LEFT JOIN dim.date AS ad ON ad.full_date = r.issued_date
    )

    SELECT * INTO #review_now FROM measured;
    SET @rows_read = (SELECT COUNT(*) FROM #review_now);

    UPDATE f
    SET review_sk = n.review_sk, service_sk = n.service_sk, project_sk = n.project_sk,
        planned_date_key = n.planned_date_key, due_date_key = n.due_date_key, issued_date_key = n.issued_date_key,
        cycle_no = n.cycle_no, status = n.status, is_completed = n.is_completed, is_cancelled = n.is_cancelled,
        is_deleted = n.is_deleted, is_overdue = n.is_overdue, days_overdue = n.days_overdue,
        planned_vs_actual_days = n.planned_vs_actual_days, weight_factor = n.weight_factor,
        as_of_date_key = @as_of_date_key, run_id = @p_run_id
    FROM fact.review AS f
    INNER JOIN #review_now AS n ON n.review_id = f.review_id
    WHERE EXISTS (  -- NULL-safe: some value differs
        SELECT n.review_sk, n.service_sk, n.project_sk, n.planned_date_key, n.due_date_key, n.issued_date_key,
            n.cycle_no, n.status, n.is_completed, n.is_cancelled, n.is_deleted, n.is_overdue, n.days_overdue,
            n.planned_vs_actual_days, n.weight_factor
        EXCEPT
        SELECT f.review_sk, f.service_sk, f.project_sk, f.planned_date_key, f.due_date_key, f.issued_date_key,
            f.cycle_no, f.status, f.is_completed, f.is_cancelled, f.is_deleted, f.is_overdue, f.days_overdue,
            f.planned_vs_actual_days, f.weight_factor
    );
    SET @rows_updated = @@ROWCOUNT;

    INSERT INTO fact.review (
        review_id, review_sk, service_sk, project_sk, planned_date_key, due_date_key, issued_date_key, cycle_no,
        status, is_completed, is_cancelled, is_deleted, is_overdue, days_overdue, planned_vs_actual_days,
        weight_factor, as_of_date_key, run_id
    )
    SELECT
        n.review_id, n.review_sk, n.service_sk, n.project_sk, n.planned_date_key, n.due_date_key, n.issued_date_key,
        n.cycle_no, n.status, n.is_completed, n.is_cancelled, n.is_deleted, n.is_overdue, n.days_overdue,
        n.planned_vs_actual_days, n.weight_factor, @as_of_date_key, @p_run_id
    FROM #review_now AS n
    WHERE NOT EXISTS (SELECT 1 FROM fact.review AS f WHERE f.review_id = n.review_id);
    SET @rows_inserted = @@ROWCOUNT;

    SELECT @rows_read AS rows_read, @rows_inserted AS rows_inserted, @rows_updated AS rows_updated;
END;
