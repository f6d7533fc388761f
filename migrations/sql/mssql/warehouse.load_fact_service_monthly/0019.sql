-- warehouse.load_fact_service_monthly
-- Purpose:    the service monthly snapshot (same rules as the PostgreSQL version): one row per (service,
--             month) with the state at the end of the month in the business time zone, or at the as-of
--             instant for the current month: earned value = agreed_fee x progress_pct / 100, claimed =
--             claimed_to_date, variance = earned value - claimed (DECIMAL(18,2)), quantities, and the
--             service's reviews then (total without cancelled, completed, overdue). Every run recomputes
--             the as-of month (overdue counts move with the date); the last month computed is taken once
--             more after it ends; an ended month is otherwise recomputed only when a version written after
--             @p_since_run_id starts in it (late data).
--             T-SQL: @p_time_zone is a Windows zone name (sys.time_zone_info); the months come from dim.date.
-- Parameters: @p_run_id; @p_as_of; @p_time_zone; @p_since_run_id, @p_since_as_of: the last run whose fact
--             phase committed and its as-of instant (NULL: never), given by the run log.
-- Returns:    one row (rows_read, rows_inserted, rows_updated, rows_deleted) for the run log.
-- Reads:      dim.service, dim.review, dim.project, dim.date. Writes: fact.service_monthly.
CREATE OR ALTER PROCEDURE warehouse.load_fact_service_monthly
    @p_run_id BIGINT,
    @p_as_of DATETIMEOFFSET,
    @p_time_zone NVARCHAR(64),
    @p_since_run_id BIGINT = NULL,
    @p_since_as_of DATETIMEOFFSET = NULL
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    DECLARE @rows_read BIGINT = 0;
    DECLARE @rows_inserted BIGINT = 0;
    DECLARE @rows_updated BIGINT = 0;
    DECLARE @rows_deleted BIGINT = 0;
    DECLARE @as_of_date DATE = CAST(@p_as_of AT TIME ZONE @p_time_zone AS DATE);
    DECLARE @as_of_month DATE = DATEFROMPARTS(YEAR(@as_of_date), MONTH(@as_of_date), 1);
    DECLARE @first_month DATE;
    DECLARE @last_month DATE;
    DECLARE @last_run BIGINT = @p_since_run_id;
    DECLARE @last_as_of DATETIMEOFFSET = @p_since_as_of;
    DECLARE @late_date DATE;
    DECLARE @from DATE;

    SELECT
        @first_month = CONVERT(DATE, CAST(MIN(month_date_key) AS CHAR(8)), 112),
        @last_month = CONVERT(DATE, CAST(MAX(month_date_key) AS CHAR(8)), 112)
    FROM fact.service_monthly;

    IF @first_month IS NULL
        SET @from = @as_of_month;
    ELSE
    BEGIN
        SELECT @late_date = MIN(CAST(valid_from AT TIME ZONE @p_time_zone AS DATE))
        FROM (
            SELECT valid_from FROM dim.service WHERE @last_run IS NULL OR run_id > @last_run
            UNION ALL SELECT valid_from FROM dim.review WHERE @last_run IS NULL OR run_id > @last_run
            UNION ALL SELECT valid_from FROM dim.project WHERE @last_run IS NULL OR run_id > @last_run
        ) AS changed;
        SET @from = (
            SELECT MIN(v) FROM (
                VALUES (DATEADD(MONTH, 1, @last_month)),
                    (DATEFROMPARTS(YEAR(@late_date), MONTH(@late_date), 1))
            ) AS c (v)
        );
        IF @from < @first_month SET @from = @first_month;
        -- the last month computed before it ended gets its end-of-month state once
        IF @last_month < @as_of_month AND (@last_as_of IS NULL
            OR @last_as_of < CAST(DATEADD(MONTH, 1, @last_month) AS DATETIME2) AT TIME ZONE @p_time_zone)
            AND (@from IS NULL OR @last_month < @from)
            SET @from = @last_month;
        -- the as-of month holds the state at this run's as-of: recomputed every run (overdue counts move
        -- with the as-of date even when no version changed)
        IF @from IS NULL OR @from > @as_of_month SET @from = @as_of_month;
    END;
    IF @from IS NULL OR @from > @as_of_month
    BEGIN
        SELECT @rows_read AS rows_read, @rows_inserted AS rows_inserted, @rows_updated AS rows_updated, @rows_deleted AS rows_deleted;
        RETURN;
    END;

    WITH months AS (
        SELECT
            full_date AS month_start,
            CASE
                WHEN DATEADD(MICROSECOND, -1, CAST(DATEADD(MONTH, 1, full_date) AS DATETIME2) AT TIME ZONE @p_time_zone)
                    < @p_as_of
                    THEN DATEADD(MICROSECOND, -1, CAST(DATEADD(MONTH, 1, full_date) AS DATETIME2) AT TIME ZONE @p_time_zone)
                ELSE @p_as_of
            END AS at_instant
        FROM dim.date
        WHERE full_date BETWEEN @from AND @as_of_month AND day_of_month = 1
    ),

    reviews AS (
        SELECT
            m.month_start,
            r.service_id,
            SUM(CASE WHEN r.status <> N'cancelled' THEN 1 ELSE 0 END) AS total,
            SUM(CASE WHEN r.status IN (N'completed', N'report_issued', N'closed') THEN 1 ELSE 0 END) AS completed,
            SUM(CASE WHEN r.status NOT IN (N'completed', N'report_issued', N'closed', N'cancelled')
                AND COALESCE(r.due_date, r.planned_date) < CAST(m.at_instant AT TIME ZONE @p_time_zone AS DATE)
                THEN 1 ELSE 0 END) AS overdue
        FROM months AS m
        INNER JOIN dim.review AS r ON r.valid_from <= m.at_instant AND r.valid_to > m.at_instant
        WHERE r.is_deleted = 0 AND r.review_sk <> -1
        GROUP BY m.month_start, r.service_id
    ),

    first_project AS (
        SELECT project_id, project_sk
        FROM (
            SELECT project_id, project_sk, ROW_NUMBER() OVER (PARTITION BY project_id ORDER BY valid_from) AS n
            FROM dim.project WHERE project_sk <> -1
        ) AS ranked
        WHERE n = 1
    )

    SELECT
        CAST(CONVERT(CHAR(8), m.month_start, 112) AS INT) AS month_date_key,
        s.service_id,
        s.service_sk,
        COALESCE(p.project_sk, fp.project_sk, -1) AS project_sk,
        s.agreed_fee,
        s.progress_pct,
        CAST(ROUND(s.agreed_fee * s.progress_pct / 100, 2) AS DECIMAL(18, 2)) AS earned_value,
        s.claimed_to_date AS claimed,
        CAST(ROUND(s.agreed_fee * s.progress_pct / 100, 2) - s.claimed_to_date AS DECIMAL(18, 2)) AS variance,
        s.unit_qty,
        COALESCE(r.total, 0) AS reviews_total,
        COALESCE(r.completed, 0) AS reviews_completed,
        COALESCE(r.overdue, 0) AS reviews_overdue
    INTO #service_month
    FROM months AS m
    INNER JOIN dim.service AS s ON s.valid_from <= m.at_instant AND s.valid_to > m.at_instant
    LEFT JOIN reviews AS r ON r.month_start = m.month_start AND r.service_id = s.service_id
    LEFT JOIN dim.project AS p
        ON p.project_id = s.project_id AND p.valid_from <= m.at_instant AND p.valid_to > m.at_instant
    LEFT JOIN first_project AS fp ON fp.project_id = s.project_id
    WHERE s.is_deleted = 0 AND s.service_sk <> -1;
    SET @rows_read = (SELECT COUNT(*) FROM #service_month);

    DELETE f
    FROM fact.service_monthly AS f
    WHERE f.month_date_key BETWEEN CAST(CONVERT(CHAR(8), @from, 112) AS INT)
            AND CAST(CONVERT(CHAR(8), @as_of_month, 112) AS INT)
        AND NOT EXISTS (
            SELECT 1 FROM #service_month AS n
            WHERE n.month_date_key = f.month_date_key AND n.service_id = f.service_id
        );
    SET @rows_deleted = @@ROWCOUNT;

    UPDATE f
    SET service_sk = n.service_sk, project_sk = n.project_sk, agreed_fee = n.agreed_fee,
        progress_pct = n.progress_pct, earned_value = n.earned_value, claimed = n.claimed, variance = n.variance,
        unit_qty = n.unit_qty, reviews_total = n.reviews_total, reviews_completed = n.reviews_completed,
        reviews_overdue = n.reviews_overdue, run_id = @p_run_id
    FROM fact.service_monthly AS f
    INNER JOIN #service_month AS n ON n.month_date_key = f.month_date_key AND n.service_id = f.service_id
    WHERE EXISTS (  -- NULL-safe: some value differs
        SELECT n.service_sk, n.project_sk, n.agreed_fee, n.progress_pct, n.earned_value, n.claimed, n.variance,
            n.unit_qty, n.reviews_total, n.reviews_completed, n.reviews_overdue
        EXCEPT
        SELECT f.service_sk, f.project_sk, f.agreed_fee, f.progress_pct, f.earned_value, f.claimed, f.variance,
            f.unit_qty, f.reviews_total, f.reviews_completed, f.reviews_overdue
    );
    SET @rows_updated = @@ROWCOUNT;

    INSERT INTO fact.service_monthly (
        month_date_key, service_id, service_sk, project_sk, agreed_fee, progress_pct, earned_value, claimed,
        variance, unit_qty, reviews_total, reviews_completed, reviews_overdue, run_id
    )
    SELECT
        n.month_date_key, n.service_id, n.service_sk, n.project_sk, n.agreed_fee, n.progress_pct, n.earned_value,
        n.claimed, n.variance, n.unit_qty, n.reviews_total, n.reviews_completed, n.reviews_overdue, @p_run_id
    FROM #service_month AS n
    WHERE NOT EXISTS (
        SELECT 1 FROM fact.service_monthly AS f
        WHERE f.month_date_key = n.month_date_key AND f.service_id = n.service_id
    );
    SET @rows_inserted = @@ROWCOUNT;

    SELECT @rows_read AS rows_read, @rows_inserted AS rows_inserted, @rows_updated AS rows_updated, @rows_deleted AS rows_deleted;
END;
