-- warehouse.load_fact_issue_daily
-- Purpose:    the daily issue snapshot: one row per (issue, local date) for every issue that exists and
--             is not deleted at the end of that day in the business time zone (for the as-of date: at
--             the as-of instant), with the dimension versions in effect then. Same rules and the same
--             choice of dates as the PostgreSQL version (see procs/postgresql/warehouse): days the
--             schedule missed and days late data changed are recomputed (from @p_recompute_from on, for a
--             backfill); identical rows are left alone. Raw status and priority meet the maps trimmed and
--             case-insensitively, once per distinct spelling and day; of map rows that differ only by case
--             or spaces the first in code-point order wins (BIN2, then the shorter). Each row carries the
--             text analytics version in effect at the day's instant (matched by source system and tracker
--             issue id; none: NULL measures, issue_analytics_sk -1); a new analytics version recomputes
--             from the day it starts on, as a new issue version does. A day before a map's first load (a
--             backfill before the first run) reads the map as first loaded, as the issue events do.
--             T-SQL: @p_time_zone is a Windows zone name (sys.time_zone_info), e.g.
--             'AUS Eastern Standard Time' for Australia/Sydney; the days come from dim.date.
-- Parameters: @p_run_id; @p_since_run_id: the last run whose fact phase committed (NULL: never),
--             given by the run log; @p_as_of: the run's as-of instant; @p_time_zone: the business time zone.
-- Returns:    one row (rows_read, rows_inserted, rows_updated, rows_deleted) for the run log.
-- Reads:      dim.issue, dim.issue_analytics, dim.project, dim.status_map, dim.priority_map, dim.date.
-- Writes:     dim.issue_key, fact.issue_daily.
CREATE OR ALTER PROCEDURE warehouse.load_fact_issue_daily
    @p_run_id BIGINT,
    @p_as_of DATETIMEOFFSET,
    @p_time_zone NVARCHAR(64),
    @p_since_run_id BIGINT = NULL,
    @p_recompute_from DATE = NULL
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    IF NOT EXISTS (SELECT 1 FROM sys.time_zone_info WHERE name = @p_time_zone)
        THROW 50001, N'load_fact_issue_daily: the time zone is not in sys.time_zone_info; pass a Windows zone name such as AUS Eastern Standard Time.', 1;

    DECLARE @rows_read BIGINT = 0;
    DECLARE @rows_inserted BIGINT = 0;
    DECLARE @rows_updated BIGINT = 0;
    DECLARE @rows_deleted BIGINT = 0;
    DECLARE @as_of_date DATE = CAST(@p_as_of AT TIME ZONE @p_time_zone AS DATE);
    DECLARE @first_date DATE;
    DECLARE @last_date DATE;
    DECLARE @last_run BIGINT;
    DECLARE @late_date DATE;
    DECLARE @from DATE;
    -- a backfill (pmw run --backfill-from D): every issue from D on
    DECLARE @recompute_from DATE = @p_recompute_from;

    -- min/max of the leading primary-key column: two index probes, whatever the fact's size
    SELECT
        @first_date = CONVERT(DATE, CAST(MIN(snapshot_date_key) AS CHAR(8)), 112),
        @last_date = CONVERT(DATE, CAST(MAX(snapshot_date_key) AS CHAR(8)), 112)
    FROM fact.issue_daily;
    -- the last run whose snapshot committed, even one that found nothing to change; without one (a call
    -- outside the flow) the newest run among the last day's rows
    SET @last_run = @p_since_run_id;
    IF @last_run IS NULL AND @last_date IS NOT NULL
        SELECT @last_run = MAX(run_id)
        FROM fact.issue_daily WHERE snapshot_date_key = CAST(CONVERT(CHAR(8), @last_date, 112) AS INT);

    -- durable keys for issues first seen since the last snapshot run (all of them the first time)
    INSERT INTO dim.issue_key (source_system, source_project_id, source_issue_id)
    SELECT DISTINCT d.source_system, d.source_project_id, d.source_issue_id
    FROM dim.issue AS d
    WHERE d.issue_sk <> -1 AND (@last_run IS NULL OR d.run_id > @last_run)
        AND NOT EXISTS (
            SELECT 1 FROM dim.issue_key AS k
            WHERE k.source_system = d.source_system AND k.source_project_id = d.source_project_id
                AND k.source_issue_id = d.source_issue_id
        );

    IF @first_date IS NULL
        SET @from = @as_of_date;
    ELSE
    BEGIN
        -- a new version of an issue or of its text analytics, or of a project or a map (which can change
        -- any issue's row; late data), from the day it starts on. The PostgreSQL version recomputes only the
        -- changed issues' rows for an issue change; this one recomputes every issue from that day: the same
        -- rows, more work (issue #15 lists it)
        SELECT @late_date = MIN(CAST(changed.valid_from AT TIME ZONE @p_time_zone AS DATE))
        FROM (
            SELECT valid_from FROM dim.issue WHERE run_id > @last_run
            UNION ALL SELECT valid_from FROM dim.issue_analytics WHERE run_id > @last_run
            UNION ALL SELECT valid_from FROM dim.project WHERE run_id > @last_run
            UNION ALL SELECT valid_from FROM dim.status_map WHERE run_id > @last_run
            UNION ALL SELECT valid_from FROM dim.priority_map WHERE run_id > @last_run
        ) AS changed;
        SET @from = (SELECT MIN(v) FROM (VALUES (DATEADD(DAY, 1, @last_date)), (@late_date), (@as_of_date)) AS c (v));
        IF @from < @first_date SET @from = @first_date;
    END;
    IF @recompute_from IS NOT NULL AND @recompute_from < @from
        SET @from = @recompute_from;  -- earlier than the first snapshot date too: history is extended

    -- each map is read at the day's instant, or at its first load for a day before it (a backfill reaching
    -- back past the first run reads the map as first loaded, as load_fact_issue_event does; same rule as
    -- the PostgreSQL version). No GREATEST: SQL Server before 2022 has none; a NULL first load (no map
    -- yet) compares unknown and leaves the day's instant.
    DECLARE @status_map_first DATETIMEOFFSET = (SELECT MIN(valid_from) FROM dim.status_map WHERE status_map_sk <> -1);
    DECLARE @priority_map_first DATETIMEOFFSET = (
        SELECT MIN(valid_from) FROM dim.priority_map WHERE priority_map_sk <> -1
    );

    -- the days to compute, each with its instant: the end of the local day, or the as-of instant
    SELECT
        d.snapshot_date,
        d.at_instant,
        CASE WHEN d.at_instant < @status_map_first THEN @status_map_first ELSE d.at_instant END AS status_at,
        CASE WHEN d.at_instant < @priority_map_first THEN @priority_map_first ELSE d.at_instant END AS priority_at
    INTO #days
    FROM (
        SELECT
            full_date AS snapshot_date,
            CASE
                WHEN DATEADD(MICROSECOND, -1, CAST(DATEADD(DAY, 1, full_date) AS DATETIME2) AT TIME ZONE @p_time_zone)
                    < @p_as_of
                    THEN DATEADD(MICROSECOND, -1, CAST(DATEADD(DAY, 1, full_date) AS DATETIME2) AT TIME ZONE @p_time_zone)
                ELSE @p_as_of
            END AS at_instant
        FROM dim.date
        WHERE full_date BETWEEN @from AND @as_of_date
    ) AS d;

    -- every spelling the trackers used, once per day, resolved against the map rows in effect that day by
    -- its trimmed, lower-case key (business-rules.md); of map rows that differ only by case or spaces the
    -- first in code-point order wins (BIN2; then the shorter, since 'a' = 'a ' here), as in the PostgreSQL
    -- version (collation "C"). SELECT INTO keeps the columns' collation, so the joins below match a
    -- spelling exactly as DISTINCT grouped it.
    SELECT ranked.snapshot_date, ranked.source_system, ranked.raw_status, ranked.status_map_sk, ranked.is_closed
    INTO #status_of
    FROM (
        SELECT
            d.snapshot_date,
            r.source_system,
            r.raw_status,
            sm.status_map_sk,
            CAST(sm.is_closed AS INT) AS is_closed,
            ROW_NUMBER() OVER (
                PARTITION BY d.snapshot_date, r.source_system, r.raw_status
                ORDER BY sm.raw_status COLLATE Latin1_General_BIN2, DATALENGTH(sm.raw_status)
            ) AS n
        FROM (SELECT DISTINCT source_system, raw_status FROM dim.issue WHERE raw_status IS NOT NULL) AS r
        CROSS JOIN #days AS d
        INNER JOIN dim.status_map AS sm
            ON sm.source_system = r.source_system
            AND LOWER(LTRIM(RTRIM(sm.raw_status))) = LOWER(LTRIM(RTRIM(r.raw_status)))
            AND sm.valid_from <= d.status_at AND sm.valid_to > d.status_at AND sm.is_deleted = 0
            AND sm.status_map_sk <> -1
    ) AS ranked
    WHERE ranked.n = 1;

    -- a spelling the map has decides (even when it maps it to NULL); else the fallback rule, which runs once
    -- per spelling and day, not once per issue
    SELECT
        ranked.snapshot_date,
        ranked.source_system,
        ranked.raw_priority,
        CASE WHEN ranked.priority_map_sk IS NOT NULL THEN ranked.normalized_priority
            ELSE warehouse.normalize_priority(ranked.raw_priority) END AS priority
    INTO #priority_of
    FROM (
        SELECT
            d.snapshot_date,
            r.source_system,
            r.raw_priority,
            pm.priority_map_sk,
            pm.normalized_priority,
            ROW_NUMBER() OVER (
                PARTITION BY d.snapshot_date, r.source_system, r.raw_priority
                ORDER BY pm.raw_priority COLLATE Latin1_General_BIN2, DATALENGTH(pm.raw_priority)
            ) AS n
        FROM (SELECT DISTINCT source_system, raw_priority FROM dim.issue WHERE raw_priority IS NOT NULL) AS r
        CROSS JOIN #days AS d
        LEFT JOIN dim.priority_map AS pm
            ON pm.source_system = r.source_system
            AND LOWER(LTRIM(RTRIM(pm.raw_priority))) = LOWER(LTRIM(RTRIM(r.raw_priority)))
            AND pm.valid_from <= d.priority_at AND pm.valid_to > d.priority_at AND pm.is_deleted = 0
            AND pm.priority_map_sk <> -1
    ) AS ranked
    WHERE ranked.n = 1;

    WITH first_project AS (
        SELECT project_id, project_sk
        FROM (
            SELECT project_id, project_sk, ROW_NUMBER() OVER (PARTITION BY project_id ORDER BY valid_from) AS n
            FROM dim.project WHERE project_sk <> -1
        ) AS ranked
        WHERE n = 1
    ),

    resolved AS (
        SELECT
            d.snapshot_date,
            k.issue_key,
            i.issue_sk,
            CASE WHEN i.project_id IS NULL THEN -1 ELSE COALESCE(p.project_sk, fp.project_sk, -1) END AS project_sk,
            COALESCE(s.status_map_sk, -1) AS status_map_sk,
            COALESCE(s.is_closed, 0) AS is_closed,
            CAST(i.created_at AT TIME ZONE @p_time_zone AS DATE) AS created_date,
            CAST(i.closed_at AT TIME ZONE @p_time_zone AS DATE) AS closed_date,
            po.priority,
            COALESCE(a.issue_analytics_sk, -1) AS issue_analytics_sk,
            a.urgency_score,
            a.complexity_score,
            a.sentiment_score,
            a.categorization_confidence,
            a.discipline_category_id,
            a.primary_category_id
        FROM #days AS d
        INNER JOIN dim.issue AS i ON i.valid_from <= d.at_instant AND i.valid_to > d.at_instant
        INNER JOIN dim.issue_key AS k
            ON k.source_system = i.source_system AND k.source_project_id = i.source_project_id
            AND k.source_issue_id = i.source_issue_id
        LEFT JOIN dim.project AS p
            ON p.project_id = i.project_id AND p.valid_from <= d.at_instant AND p.valid_to > d.at_instant
        LEFT JOIN first_project AS fp ON fp.project_id = i.project_id
        LEFT JOIN #status_of AS s
            ON s.snapshot_date = d.snapshot_date AND s.source_system = i.source_system AND s.raw_status = i.raw_status
        LEFT JOIN #priority_of AS po
            ON po.snapshot_date = d.snapshot_date AND po.source_system = i.source_system
            AND po.raw_priority = i.raw_priority
        -- the analytics version in effect at the day's instant (a deleted one: none)
        LEFT JOIN dim.issue_analytics AS a
            ON a.source_system = i.source_system AND a.source_issue_id = i.source_issue_id
            AND a.valid_from <= d.at_instant AND a.valid_to > d.at_instant AND a.is_deleted = 0
        -- a deleted version alive before its deleted_at: an issue first seen deleted lived from its
        -- created_at (the version's start) until then
        WHERE (i.is_deleted = 0 OR i.deleted_at > d.at_instant) AND i.issue_sk <> -1
    ),

    computed AS (
        SELECT
            CAST(CONVERT(CHAR(8), snapshot_date, 112) AS INT) AS snapshot_date_key,
            issue_key,
            issue_sk,
            project_sk,
            status_map_sk,
            -- the calendar's key, -1 for a date outside it (as PostgreSQL has it): never an orphan key
            COALESCE((SELECT cd.date_key FROM dim.date AS cd WHERE cd.full_date = created_date), -1)
                AS created_date_key,
            CAST(priority AS NVARCHAR(20)) AS priority,
            CAST(1 - is_closed AS BIT) AS is_open,
            CAST(is_closed AS BIT) AS is_closed,
            CAST(CASE WHEN priority IN (N'Critical', N'High') THEN 1 ELSE 0 END AS BIT) AS is_high_priority,
            CASE WHEN is_closed = 0 THEN DATEDIFF(DAY, created_date, snapshot_date) END AS backlog_age_days,
            CASE WHEN is_closed = 1 THEN DATEDIFF(DAY, created_date, closed_date) END AS resolution_days,
            issue_analytics_sk,
            urgency_score,
            complexity_score,
            sentiment_score,
            categorization_confidence,
            discipline_category_id,
            primary_category_id
        FROM resolved
    )

    SELECT
        c.snapshot_date_key, c.issue_key, c.issue_sk, c.project_sk, c.status_map_sk, c.created_date_key, c.priority,
        c.is_open, c.is_closed, c.is_high_priority, c.backlog_age_days, c.resolution_days, c.issue_analytics_sk,
        c.urgency_score, c.complexity_score, c.sentiment_score, c.categorization_confidence,
        c.discipline_category_id, c.primary_category_id
    INTO #snapshot
    FROM computed AS c;
    SET @rows_read = (SELECT COUNT(*) FROM #snapshot);

    DELETE f
    FROM fact.issue_daily AS f
    WHERE f.snapshot_date_key BETWEEN CAST(CONVERT(CHAR(8), @from, 112) AS INT)
        AND CAST(CONVERT(CHAR(8), @as_of_date, 112) AS INT)
        AND NOT EXISTS (
            SELECT 1 FROM #snapshot AS s
            WHERE s.snapshot_date_key = f.snapshot_date_key AND s.issue_key = f.issue_key
        );
    SET @rows_deleted = @@ROWCOUNT;

    UPDATE f
    SET issue_sk = s.issue_sk, project_sk = s.project_sk, status_map_sk = s.status_map_sk,
        created_date_key = s.created_date_key, priority = s.priority, is_open = s.is_open, is_closed = s.is_closed,
        is_high_priority = s.is_high_priority, backlog_age_days = s.backlog_age_days,
        resolution_days = s.resolution_days, run_id = @p_run_id, issue_analytics_sk = s.issue_analytics_sk,
        urgency_score = s.urgency_score, complexity_score = s.complexity_score, sentiment_score = s.sentiment_score,
        categorization_confidence = s.categorization_confidence, discipline_category_id = s.discipline_category_id,
        primary_category_id = s.primary_category_id
    FROM fact.issue_daily AS f
    INNER JOIN #snapshot AS s ON s.snapshot_date_key = f.snapshot_date_key AND s.issue_key = f.issue_key
    WHERE EXISTS (  -- NULL-safe: some value differs
        SELECT s.issue_sk, s.project_sk, s.status_map_sk, s.created_date_key, s.priority, s.is_open, s.is_closed,
            s.is_high_priority, s.backlog_age_days, s.resolution_days, s.issue_analytics_sk, s.urgency_score,
            s.complexity_score, s.sentiment_score, s.categorization_confidence, s.discipline_category_id,
            s.primary_category_id
        EXCEPT
        SELECT f.issue_sk, f.project_sk, f.status_map_sk, f.created_date_key, f.priority, f.is_open, f.is_closed,
            f.is_high_priority, f.backlog_age_days, f.resolution_days, f.issue_analytics_sk, f.urgency_score,
            f.complexity_score, f.sentiment_score, f.categorization_confidence, f.discipline_category_id,
            f.primary_category_id
    );
    SET @rows_updated = @@ROWCOUNT;

    INSERT INTO fact.issue_daily (
        snapshot_date_key, issue_key, issue_sk, project_sk, status_map_sk, created_date_key, priority, is_open,
        is_closed, is_high_priority, backlog_age_days, resolution_days, run_id, issue_analytics_sk, urgency_score,
        complexity_score, sentiment_score, categorization_confidence, discipline_category_id, primary_category_id
    )
    SELECT
        s.snapshot_date_key, s.issue_key, s.issue_sk, s.project_sk, s.status_map_sk, s.created_date_key, s.priority,
        s.is_open, s.is_closed, s.is_high_priority, s.backlog_age_days, s.resolution_days, @p_run_id,
        s.issue_analytics_sk, s.urgency_score, s.complexity_score, s.sentiment_score, s.categorization_confidence,
        s.discipline_category_id, s.primary_category_id
    FROM #snapshot AS s
    WHERE NOT EXISTS (
        SELECT 1 FROM fact.issue_daily AS f
        WHERE f.snapshot_date_key = s.snapshot_date_key AND f.issue_key = s.issue_key
    );
    SET @rows_inserted = @@ROWCOUNT;

    SELECT @rows_read AS rows_read, @rows_inserted AS rows_inserted, @rows_updated AS rows_updated, @rows_deleted AS rows_deleted;
END;
