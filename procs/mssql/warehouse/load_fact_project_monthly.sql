-- warehouse.load_fact_project_monthly
-- Purpose:    project KPIs per month, built from the other facts (same rules as the PostgreSQL version):
--             issue counts and mean resolution days from the month's daily issue snapshot on its last day
--             (the end of the month, or the as-of date for the as-of month: the date itself, not the newest
--             date with rows); review and service counts and money from the service monthly snapshot of the
--             same month. One row per month for every project that exists then, and one for the unknown
--             project (-1) when issues or services without a PM project are counted. Months computed: the
--             as-of month (every run), every month whose daily or service snapshot rows were
--             written after @p_since_run_id (the last run whose fact phase committed), and every month since
--             the local date of a deleted event written after it.
-- Parameters: @p_run_id; @p_as_of; @p_time_zone: a Windows zone name (sys.time_zone_info); @p_since_run_id:
--             the last run whose fact phase committed (NULL: never), given by the run log.
-- Returns:    one row (rows_read, rows_inserted, rows_updated, rows_deleted) for the run log.
-- Reads:      fact.issue_daily, fact.service_monthly, fact.issue_event, fact.project_monthly, dim.project,
--             dim.service. Writes: fact.project_monthly.
CREATE OR ALTER PROCEDURE warehouse.load_fact_project_monthly
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
    DECLARE @rows_deleted BIGINT = 0;
    DECLARE @as_of_date DATE = CAST(@p_as_of AT TIME ZONE @p_time_zone AS DATE);
    DECLARE @as_of_month INT = YEAR(@as_of_date) * 10000 + MONTH(@as_of_date) * 100 + 1;

    -- the months to compute, each with the date and instant whose state it holds: its last day's end, or the
    -- as-of date and instant for the as-of month
    WITH months AS (
        SELECT DISTINCT month_date_key FROM (
            -- the as-of month, every run: it holds the state at this as-of, which moves without any
            -- snapshot row being written (a project created, or a service deleted, since the last run
            -- of the same day); identical rows are left alone, so the same as-of twice writes nothing
            SELECT @as_of_month AS month_date_key
            UNION ALL SELECT snapshot_date_key / 100 * 100 + 1 FROM fact.issue_daily
            WHERE @p_since_run_id IS NULL OR run_id > @p_since_run_id
            UNION ALL SELECT month_date_key FROM fact.service_monthly
            WHERE @p_since_run_id IS NULL OR run_id > @p_since_run_id
            -- a late deletion removes daily rows without writing any: every month since the deletion
            UNION ALL SELECT month_date_key FROM fact.project_monthly
            WHERE month_date_key >= (
                SELECT MIN(event_date_key) / 100 * 100 + 1
                FROM fact.issue_event
                WHERE (@p_since_run_id IS NULL OR run_id > @p_since_run_id) AND event_type = N'deleted'
                    AND event_date_key <> -1
            )
        ) AS written
        WHERE month_date_key <= @as_of_month
    ),

    ends AS (
        SELECT month_date_key, EOMONTH(CONVERT(DATE, CAST(month_date_key AS CHAR(8)), 112)) AS month_end
        FROM months
    )

    SELECT
        e.month_date_key,
        CAST(CONVERT(CHAR(8), CASE WHEN e.month_end < @as_of_date THEN e.month_end ELSE @as_of_date END, 112) AS INT)
            AS snapshot_date_key,
        CASE
            WHEN DATEADD(MICROSECOND, -1, CAST(DATEADD(DAY, 1, e.month_end) AS DATETIME2) AT TIME ZONE @p_time_zone)
                < @p_as_of
                THEN DATEADD(MICROSECOND, -1, CAST(DATEADD(DAY, 1, e.month_end) AS DATETIME2) AT TIME ZONE @p_time_zone)
            ELSE @p_as_of
        END AS state_at
    INTO #kpi_month
    FROM ends AS e;

    WITH issues AS (
        SELECT
            m.month_date_key,
            p.project_id,  -- -1 for issues without a PM project (the unknown member)
            COUNT(*) AS issues_total,
            SUM(CASE WHEN f.is_open = 1 THEN 1 ELSE 0 END) AS issues_open,
            SUM(CASE WHEN f.is_closed = 1 THEN 1 ELSE 0 END) AS issues_closed,
            SUM(CASE WHEN f.is_open = 1 AND f.is_high_priority = 1 THEN 1 ELSE 0 END) AS high_priority_open,
            ROUND(AVG(CAST(f.resolution_days AS DECIMAL(10, 1))), 1) AS avg_resolution_days
        FROM #kpi_month AS m
        INNER JOIN fact.issue_daily AS f ON f.snapshot_date_key = m.snapshot_date_key
        INNER JOIN dim.project AS p ON p.project_sk = f.project_sk
        GROUP BY m.month_date_key, p.project_id
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
        GROUP BY m.month_date_key, p.project_id
    ),

    projects AS (  -- every project that exists at the month's state instant has a row, with or without data
        SELECT m.month_date_key, p.project_id
        FROM #kpi_month AS m
        INNER JOIN dim.project AS p ON p.valid_from <= m.state_at AND p.valid_to > m.state_at
        WHERE p.is_deleted = 0 AND p.project_sk <> -1
    ),

    month_project AS (
        SELECT month_date_key, project_id FROM issues
        UNION SELECT month_date_key, project_id FROM services
        UNION SELECT month_date_key, project_id FROM projects
    )

    SELECT
        k.month_date_key,
        k.project_id,
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
    FROM month_project AS k
    LEFT JOIN issues AS i ON i.month_date_key = k.month_date_key AND i.project_id = k.project_id
    LEFT JOIN services AS s ON s.month_date_key = k.month_date_key AND s.project_id = k.project_id;
    SET @rows_read = (SELECT COUNT(*) FROM #kpi_new);

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

    SELECT @rows_read AS rows_read, @rows_inserted AS rows_inserted, @rows_updated AS rows_updated, @rows_deleted AS rows_deleted;
END;
