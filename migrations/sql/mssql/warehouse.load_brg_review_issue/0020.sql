-- warehouse.load_brg_review_issue
-- Purpose:    the review <-> issue bridge (same rules as the PostgreSQL version): the issues of a review's
--             project opened ('opened': the created event) or closed ('closed': the first closed event) within
--             the @p_window_days local days ending on the review's date (issued date, else due, else planned).
--             Cancelled and deleted reviews have no window; issues deleted now count in none (one that came
--             back counts again). The rows of reviews (or their services) and issues with a version written
--             since the last bridge run are derived again and replace the stored ones; a new window length
--             re-derives every row.
--             T-SQL: @p_time_zone is a Windows zone name (sys.time_zone_info).
-- Parameters: @p_run_id; @p_since_run_id: the last run whose fact phase committed (NULL: never),
--             given by the run log; @p_as_of (unused); @p_time_zone; @p_window_days: 1 to 366.
-- Returns:    one row (rows_read, rows_inserted, rows_deleted) for the run log.
-- Reads:      dim.review, dim.service, dim.issue, dim.issue_key, fact.issue_event, brg.review_issue.
-- Writes:     brg.review_issue.
CREATE OR ALTER PROCEDURE warehouse.load_brg_review_issue
    @p_run_id BIGINT,
    @p_as_of DATETIMEOFFSET,
    @p_time_zone NVARCHAR(64),
    @p_window_days INT,
    @p_since_run_id BIGINT = NULL
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    DECLARE @rows_read BIGINT = 0;
    DECLARE @rows_inserted BIGINT = 0;
    DECLARE @rows_deleted BIGINT = 0;
    DECLARE @last_run BIGINT = @p_since_run_id;
    DECLARE @message NVARCHAR(400);

    IF @p_window_days IS NULL OR @p_window_days NOT BETWEEN 1 AND 366
    BEGIN
        SET @message = CONCAT(
            N'load_brg_review_issue: window of ', COALESCE(CAST(@p_window_days AS NVARCHAR(12)), N'NULL'),
            N' days is not allowed; set review_issue_window_days (PMW_REVIEW_ISSUE_WINDOW_DAYS) to a whole number',
            N' from 1 to 366.'
        );
        THROW 50010, @message, 1;
    END;
    -- every run leaves all rows with one window length (a change re-derives them all): one row tells
    IF (SELECT TOP (1) window_days FROM brg.review_issue) <> @p_window_days
        SET @last_run = NULL;  -- the window length changed: every review's window moved

    SELECT
        r.review_id,
        s.project_id,
        -- date keys (YYYYMMDD) order like the dates, so the window is a range of event_date_key
        CONVERT(INT, CONVERT(CHAR(8), DATEADD(DAY, 1 - @p_window_days, w.window_end), 112)) AS window_start_key,
        CONVERT(INT, CONVERT(CHAR(8), w.window_end, 112)) AS window_end_key,
        CASE WHEN @last_run IS NULL OR r.run_id > @last_run OR s.run_id > @last_run THEN 1 ELSE 0 END AS is_changed
    INTO #bridge_review
    FROM dim.review AS r
    INNER JOIN dim.service AS s ON s.service_id = r.service_id AND s.is_current = 1 AND s.is_deleted = 0
    CROSS APPLY (
        SELECT COALESCE(CAST(r.actual_issued_at AT TIME ZONE @p_time_zone AS DATE), r.due_date, r.planned_date)
            AS window_end
    ) AS w
    WHERE r.is_current = 1 AND r.review_sk <> -1 AND r.is_deleted = 0
        AND (r.status IS NULL OR r.status <> N'cancelled') AND s.project_id IS NOT NULL AND w.window_end IS NOT NULL;

    SELECT review_id INTO #bridge_changed_review FROM #bridge_review WHERE is_changed = 1
    UNION
    SELECT r.review_id FROM dim.review AS r WHERE @last_run IS NOT NULL AND r.run_id > @last_run AND r.review_sk <> -1
    UNION
    SELECT r.review_id
    FROM dim.service AS s
    INNER JOIN dim.review AS r ON r.service_id = s.service_id AND r.is_current = 1
    WHERE @last_run IS NOT NULL AND s.run_id > @last_run;

    SELECT DISTINCT k.issue_key
    INTO #bridge_issue
    FROM dim.issue AS d
    INNER JOIN dim.issue_key AS k
        ON k.source_system = d.source_system AND k.source_project_id = d.source_project_id
        AND k.source_issue_id = d.source_issue_id
    WHERE @last_run IS NOT NULL AND d.run_id > @last_run AND d.issue_sk <> -1;

    -- the changed reviews' windows through the (project, event date) index of opened and closed events;
    -- the changed issues' events against every review of their project
    WITH candidate AS (
        SELECT r.review_id, e.issue_key, e.event_type, e.event_at, e.event_date_key
        FROM #bridge_review AS r
        INNER JOIN fact.issue_event AS e
            ON e.project_id = r.project_id AND e.event_date_key BETWEEN r.window_start_key AND r.window_end_key
            AND e.event_type IN (N'created', N'closed')
        WHERE r.is_changed = 1
        UNION
        SELECT r.review_id, e.issue_key, e.event_type, e.event_at, e.event_date_key
        FROM #bridge_issue AS c
        INNER JOIN fact.issue_event AS e ON e.issue_key = c.issue_key AND e.event_type IN (N'created', N'closed')
        INNER JOIN #bridge_review AS r
            ON r.project_id = e.project_id AND e.event_date_key BETWEEN r.window_start_key AND r.window_end_key
    ),

    -- an issue deleted now counts in no window, one that came back counts again: its current version
    -- decides, not a deleted event in its past (same rule as the PostgreSQL version)
    matched AS (
        SELECT c.*
        FROM candidate AS c
        INNER JOIN dim.issue_key AS k ON k.issue_key = c.issue_key
        INNER JOIN dim.issue AS d
            ON d.source_system = k.source_system AND d.source_project_id = k.source_project_id
            AND d.source_issue_id = k.source_issue_id AND d.is_current = 1 AND d.is_deleted = 0
    )

    SELECT
        review_id,
        issue_key,
        CAST(CASE event_type WHEN N'created' THEN N'opened' ELSE N'closed' END AS NVARCHAR(10)) AS activity,
        MIN(event_at) AS event_at,
        MIN(event_date_key) AS event_date_key
    INTO #bridge_pair
    FROM matched
    GROUP BY review_id, issue_key, event_type;
    SET @rows_read = (SELECT COUNT(*) FROM #bridge_pair);

    SELECT b.review_id, b.issue_key, b.activity
    INTO #bridge_old
    FROM brg.review_issue AS b
    INNER JOIN #bridge_changed_review AS c ON c.review_id = b.review_id
    UNION
    SELECT b.review_id, b.issue_key, b.activity
    FROM brg.review_issue AS b
    INNER JOIN #bridge_issue AS c ON c.issue_key = b.issue_key
    UNION
    SELECT b.review_id, b.issue_key, b.activity
    FROM brg.review_issue AS b
    WHERE @last_run IS NULL;

    DELETE b
    FROM brg.review_issue AS b
    INNER JOIN #bridge_old AS o ON o.review_id = b.review_id AND o.issue_key = b.issue_key AND o.activity = b.activity
    WHERE NOT EXISTS (
        SELECT 1 FROM #bridge_pair AS n
        WHERE n.review_id = b.review_id AND n.issue_key = b.issue_key AND n.activity = b.activity
            AND n.event_at = b.event_at AND n.event_date_key = b.event_date_key
            AND b.window_days = @p_window_days
    );
    SET @rows_deleted = @@ROWCOUNT;

    INSERT INTO brg.review_issue (review_id, issue_key, activity, event_at, event_date_key, window_days, run_id)
    SELECT n.review_id, n.issue_key, n.activity, n.event_at, n.event_date_key, @p_window_days, @p_run_id
    FROM #bridge_pair AS n
    WHERE NOT EXISTS (
        SELECT 1 FROM brg.review_issue AS b
        WHERE b.review_id = n.review_id AND b.issue_key = n.issue_key AND b.activity = n.activity
    );
    SET @rows_inserted = @@ROWCOUNT;

    SELECT @rows_read AS rows_read, @rows_inserted AS rows_inserted, @rows_deleted AS rows_deleted;
END;
