-- warehouse.load_fact_project_monthly
-- Purpose:    project KPIs per month, built from the other facts (same rules as the PostgreSQL version):
--             issue counts and mean resolution days from the month's last daily issue snapshot; review and
--             service counts and money from the service monthly snapshot of the same month. Months
--             computed: the as-of month if it has no rows yet, every month whose daily or service snapshot
--             rows this run wrote, and every month since the local date of a deleted event that this run's
--             events step wrote.
-- Parameters: @p_run_id; @p_as_of; @p_time_zone: a Windows zone name (sys.time_zone_info).
-- Returns:    one row (rows_inserted, rows_updated, rows_deleted) for the run log.
-- Reads:      fact.issue_daily, fact.service_monthly, fact.issue_event, fact.project_monthly, dim.project,
--             dim.service. Writes: fact.project_monthly.
CREATE OR ALTER PROCEDURE warehouse.load_fact_project_monthly
    @p_run_id BIGINT,
    @p_as_of DATETIMEOFFSET,
    @p_time_zone NVARCHAR(64)
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    DECLARE @rows_inserted BIGINT = 0;
    DECLARE @rows_updated BIGINT = 0;
    DECLARE @rows_deleted BIGINT = 0;
    DECLARE @as_of_date DATE = CAST(@p_as_of AT TIME ZONE @p_time_zone AS DATE);
    DECLARE @as_of_month INT = YEAR(@as_of_date) * 10000 + MONTH(@as_of_date) * 100 + 1;

    SELECT DISTINCT month_date_key
    INTO #kpi_month
    FROM (
        -- the as-of month when it has no rows yet; after that, only what this run wrote moves it
        SELECT @as_of_month AS month_date_key
        WHERE NOT EXISTS (SELECT 1 FROM fact.project_monthly WHERE month_date_key = @as_of_month)
        UNION ALL SELECT snapshot_date_key / 100 * 100 + 1 FROM fact.issue_daily WHERE run_id = @p_run_id
        UNION ALL SELECT month_date_key FROM fact.service_monthly WHERE run_id = @p_run_id
        -- a late deletion removes daily rows without writing any: every month since the deletion
        UNION ALL SELECT month_date_key FROM fact.project_monthly
        WHERE month_date_key >= (
            SELECT MIN(event_date_key) / 100 * 100 + 1
            FROM fact.issue_event WHERE run_id = @p_run_id AND event_type = N'deleted' AND event_date_key <> -1
        )
    ) AS months;

    WITH last_day AS (  -- the month's last snapshot date: one probe of the primary key per month
        SELECT m.month_date_key, l.snapshot_date_key
        FROM #kpi_month AS m
        CROSS APPLY (
            SELECT MAX(f.snapshot_date_key) AS snapshot_date_key
            FROM fact.issue_daily AS f
            WHERE f.snapshot_date_key BETWEEN m.month_date_key AND m.month_date_key + 30
        ) AS l
        WHERE l.snapshot_date_key IS NOT NULL
    ),

    issues AS (
        SELECT
            l.month_date_key,
            p.project_id,
            COUNT(*) AS issues_total,
            SUM(CASE WHEN f.is_open = 1 THEN 1 ELSE 0 END) AS issues_open,
            SUM(CASE WHEN f.is_closed = 1 THEN 1 ELSE 0 END) AS issues_closed,
            SUM(CASE WHEN f.is_open = 1 AND f.is_high_priority = 1 THEN 1 ELSE 0 END) AS high_priority_open,
            ROUND(AVG(CAST(f.resolution_days AS DECIMAL(10, 1))), 1) AS avg_resolution_days
        FROM last_day AS l
        INNER JOIN fact.issue_daily AS f ON f.snapshot_date_key = l.snapshot_date_key
        INNER JOIN dim.project AS p ON p.project_sk = f.project_sk
        WHERE f.project_sk <> -1
        GROUP BY l.month_date_key, p.project_id
    ),

    services AS (
        SELECT
            m.month_date_key,
            p.project_id,
            SUM(m.reviews_total) AS reviews_total,
            SUM(m.reviews_completed) AS reviews_completed,
            SUM(m.reviews_overdue) AS reviews_overdue,
            SUM(CASE WHEN s.status = N'in_progress' THEN 1 ELSE 0 END) AS services_in_progress,
            SUM(CASE WHEN s.status = N'completed' THEN 1 ELSE 0 END) AS services_completed,
            SUM(m.earned_value) AS earned_value,
            SUM(m.claimed) AS claimed,
            SUM(m.variance) AS variance
        FROM fact.service_monthly AS m
        INNER JOIN #kpi_month AS k ON k.month_date_key = m.month_date_key
        INNER JOIN dim.service AS s ON s.service_sk = m.service_sk
        INNER JOIN dim.project AS p ON p.project_sk = m.project_sk
        WHERE m.project_sk <> -1
        GROUP BY m.month_date_key, p.project_id
    )

    SELECT
        COALESCE(i.month_date_key, s.month_date_key) AS month_date_key,
        COALESCE(i.project_id, s.project_id) AS project_id,
        COALESCE(i.issues_total, 0) AS issues_total,
        COALESCE(i.issues_open, 0) AS issues_open,
        COALESCE(i.issues_closed, 0) AS issues_closed,
        COALESCE(i.high_priority_open, 0) AS high_priority_open,
        CAST(i.avg_resolution_days AS DECIMAL(10, 1)) AS avg_resolution_days,
        COALESCE(s.reviews_total, 0) AS reviews_total,
        COALESCE(s.reviews_completed, 0) AS reviews_completed,
        COALESCE(s.reviews_overdue, 0) AS reviews_overdue,
        COALESCE(s.services_in_progress, 0) AS services_in_progress,
        COALESCE(s.services_completed, 0) AS services_completed,
        CAST(COALESCE(s.earned_value, 0) AS DECIMAL(18, 2)) AS earned_value,
        CAST(COALESCE(s.claimed, 0) AS DECIMAL(18, 2)) AS claimed,
        CAST(COALESCE(s.variance, 0) AS DECIMAL(18, 2)) AS variance
    INTO #kpi_new
    FROM issues AS i
    FULL OUTER JOIN services AS s ON s.month_date_key = i.month_date_key AND s.project_id = i.project_id;

    DELETE f
    FROM fact.project_monthly AS f
    INNER JOIN #kpi_month AS m ON m.month_date_key = f.month_date_key
    WHERE NOT EXISTS (
        SELECT 1 FROM #kpi_new AS n WHERE n.month_date_key = f.month_date_key AND n.project_id = f.project_id
    );
    SET @rows_deleted = @@ROWCOUNT;

    UPDATE f
    SET issues_total = n.issues_total, issues_open = n.issues_open, issues_closed = n.issues_closed,
        high_priority_open = n.high_priority_open, avg_resolution_days = n.avg_resolution_days,
        reviews_total = n.reviews_total, reviews_completed = n.reviews_completed,
        reviews_overdue = n.reviews_overdue, services_in_progress = n.services_in_progress,
        services_completed = n.services_completed, earned_value = n.earned_value, claimed = n.claimed,
        variance = n.variance, run_id = @p_run_id
    FROM fact.project_monthly AS f
    INNER JOIN #kpi_new AS n ON n.month_date_key = f.month_date_key AND n.project_id = f.project_id
    WHERE EXISTS (  -- NULL-safe: some value differs
        SELECT n.issues_total, n.issues_open, n.issues_closed, n.high_priority_open, n.avg_resolution_days,
            n.reviews_total, n.reviews_completed, n.reviews_overdue, n.services_in_progress, n.services_completed,
            n.earned_value, n.claimed, n.variance
        EXCEPT
        SELECT f.issues_total, f.issues_open, f.issues_closed, f.high_priority_open, f.avg_resolution_days,
            f.reviews_total, f.reviews_completed, f.reviews_overdue, f.services_in_progress, f.services_completed,
            f.earned_value, f.claimed, f.variance
    );
    SET @rows_updated = @@ROWCOUNT;

    INSERT INTO fact.project_monthly (
        month_date_key, project_id, issues_total, issues_open, issues_closed, high_priority_open,
        avg_resolution_days, reviews_total, reviews_completed, reviews_overdue, services_in_progress,
        services_completed, earned_value, claimed, variance, run_id
    )
    SELECT
        n.month_date_key, n.project_id, n.issues_total, n.issues_open, n.issues_closed, n.high_priority_open,
        n.avg_resolution_days, n.reviews_total, n.reviews_completed, n.reviews_overdue, n.services_in_progress,
        n.services_completed, n.earned_value, n.claimed, n.variance, @p_run_id
    FROM #kpi_new AS n
    WHERE NOT EXISTS (
        SELECT 1 FROM fact.project_monthly AS f
        WHERE f.month_date_key = n.month_date_key AND f.project_id = n.project_id
    );
    SET @rows_inserted = @@ROWCOUNT;

    SELECT @rows_inserted AS rows_inserted, @rows_updated AS rows_updated, @rows_deleted AS rows_deleted;
END;
