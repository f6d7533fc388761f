-- warehouse.load_fact_review_event
-- Purpose:    review events from dim.review history (same rules as the PostgreSQL version): planned,
--             status_change, completed, cancelled, reopened, rescheduled, issued (timed by actual_issued_at),
--             deleted; the others are timed when a run first saw the change (the version's valid_from).
--             Dates and instants in from/to are ISO 8601 text (UTC for instants). The events of every review
--             with a version written after @p_since_run_id are derived again and replace the stored ones.
--             T-SQL: @p_time_zone is a Windows zone name (sys.time_zone_info).
-- Parameters: @p_run_id; @p_since_run_id: the last run whose fact phase committed (NULL: never),
--             given by the run log; @p_as_of (unused: events carry their own times); @p_time_zone.
-- Returns:    one row (rows_read, rows_inserted, rows_deleted) for the run log.
-- Reads:      dim.review, dim.date. Writes: fact.review_event.
CREATE OR ALTER PROCEDURE warehouse.load_fact_review_event
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
    DECLARE @rows_deleted BIGINT = 0;
    DECLARE @last_run BIGINT = @p_since_run_id;

    SELECT DISTINCT review_id
    INTO #review_event_key
    FROM dim.review
    WHERE review_sk <> -1 AND (@last_run IS NULL OR run_id > @last_run);

    WITH states AS (
        SELECT
            r.review_id,
            r.review_sk,
            r.valid_from,
            r.status,
            CAST(r.is_deleted AS INT) AS is_deleted,
            r.actual_issued_at,
            COALESCE(r.due_date, r.planned_date) AS target_date,
            CASE WHEN r.status IN (N'completed', N'report_issued', N'closed') THEN 1 ELSE 0 END AS is_completed,
            CASE WHEN r.status = N'cancelled' THEN 1 ELSE 0 END AS is_cancelled
        FROM #review_event_key AS k
        INNER JOIN dim.review AS r ON r.review_id = k.review_id
    ),

    versions AS (
        SELECT
            s.*,
            ROW_NUMBER() OVER (PARTITION BY s.review_id ORDER BY s.valid_from) AS version_no,
            LAG(s.status) OVER (PARTITION BY s.review_id ORDER BY s.valid_from) AS previous_status,
            LAG(s.is_completed) OVER (PARTITION BY s.review_id ORDER BY s.valid_from) AS previous_completed,
            LAG(s.is_cancelled) OVER (PARTITION BY s.review_id ORDER BY s.valid_from) AS previous_cancelled,
            LAG(s.is_deleted) OVER (PARTITION BY s.review_id ORDER BY s.valid_from) AS previous_deleted,
            LAG(s.actual_issued_at) OVER (PARTITION BY s.review_id ORDER BY s.valid_from) AS previous_issued_at,
            LAG(s.target_date) OVER (PARTITION BY s.review_id ORDER BY s.valid_from) AS previous_target_date
        FROM states AS s
    ),

    events AS (
        SELECT review_id, review_sk, N'planned' AS event_type, valid_from AS event_at,
            CAST(NULL AS NVARCHAR(50)) AS from_value, CONVERT(NVARCHAR(10), target_date, 23) AS to_value
        FROM versions WHERE version_no = 1
        UNION ALL
        SELECT review_id, review_sk, N'status_change', valid_from, previous_status, status
        FROM versions
        WHERE version_no > 1
            AND (status <> previous_status OR (status IS NULL AND previous_status IS NOT NULL)
                OR (status IS NOT NULL AND previous_status IS NULL))
        UNION ALL
        SELECT review_id, review_sk, N'completed', COALESCE(actual_issued_at, valid_from), previous_status, status
        FROM versions WHERE is_completed = 1 AND is_deleted = 0 AND (version_no = 1 OR previous_completed = 0)
        UNION ALL
        SELECT review_id, review_sk, N'cancelled', valid_from, previous_status, status
        FROM versions WHERE is_cancelled = 1 AND is_deleted = 0 AND (version_no = 1 OR previous_cancelled = 0)
        UNION ALL
        SELECT review_id, review_sk, N'reopened', valid_from, previous_status, status
        FROM versions
        WHERE version_no > 1 AND previous_completed = 1 AND is_completed = 0 AND is_cancelled = 0 AND is_deleted = 0
        UNION ALL
        SELECT review_id, review_sk, N'rescheduled', valid_from, CONVERT(NVARCHAR(10), previous_target_date, 23),
            CONVERT(NVARCHAR(10), target_date, 23)
        FROM versions
        WHERE version_no > 1
            AND (target_date <> previous_target_date OR (target_date IS NULL AND previous_target_date IS NOT NULL)
                OR (target_date IS NOT NULL AND previous_target_date IS NULL))
        UNION ALL
        SELECT review_id, review_sk, N'issued', actual_issued_at,
            -- the first 19 characters: seconds truncated, as PostgreSQL's to_char does
            CONVERT(NVARCHAR(19), SWITCHOFFSET(previous_issued_at, '+00:00'), 126) + N'Z',
            CONVERT(NVARCHAR(19), SWITCHOFFSET(actual_issued_at, '+00:00'), 126) + N'Z'
        FROM versions
        WHERE actual_issued_at IS NOT NULL AND is_deleted = 0
            AND (version_no = 1 OR previous_issued_at IS NULL OR actual_issued_at <> previous_issued_at)
        UNION ALL
        SELECT review_id, review_sk, N'deleted', valid_from, previous_status, status
        FROM versions WHERE version_no > 1 AND is_deleted = 1 AND previous_deleted = 0
    ),

    numbered AS (
        -- a value that comes back (issued at A, then B, then A again) keeps its first event
        SELECT ev.*, ROW_NUMBER() OVER (PARTITION BY ev.review_id, ev.event_type, ev.event_at ORDER BY ev.review_sk)
            AS occurrence
        FROM events AS ev
    )

    SELECT
        n.review_id,
        CAST(n.event_type AS NVARCHAR(20)) AS event_type,
        n.event_at,
        COALESCE(d.date_key, -1) AS event_date_key,
        n.review_sk,
        CAST(n.from_value AS NVARCHAR(50)) AS from_value,
        CAST(n.to_value AS NVARCHAR(50)) AS to_value
    INTO #review_event_new
    FROM numbered AS n
    LEFT JOIN dim.date AS d ON d.full_date = CAST(n.event_at AT TIME ZONE @p_time_zone AS DATE)
    WHERE n.occurrence = 1;
    SET @rows_read = (SELECT COUNT(*) FROM #review_event_new);

    DELETE f
    FROM fact.review_event AS f
    INNER JOIN #review_event_key AS k ON k.review_id = f.review_id
    WHERE NOT EXISTS (
        SELECT f.review_id, f.event_type, f.event_at, f.event_date_key, f.review_sk, f.from_value, f.to_value
        INTERSECT
        SELECT n.review_id, n.event_type, n.event_at, n.event_date_key, n.review_sk, n.from_value, n.to_value
        FROM #review_event_new AS n
    );
    SET @rows_deleted = @@ROWCOUNT;

    INSERT INTO fact.review_event (
        review_id, event_type, event_at, event_date_key, review_sk, from_value, to_value, run_id
    )
    SELECT n.review_id, n.event_type, n.event_at, n.event_date_key, n.review_sk, n.from_value, n.to_value, @p_run_id
    FROM #review_event_new AS n
    WHERE NOT EXISTS (
        SELECT 1 FROM fact.review_event AS f
        WHERE f.review_id = n.review_id AND f.event_type = n.event_type AND f.event_at = n.event_at
    );
    SET @rows_inserted = @@ROWCOUNT;

    SELECT @rows_read AS rows_read, @rows_inserted AS rows_inserted, @rows_deleted AS rows_deleted;
END;
