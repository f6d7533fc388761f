-- warehouse.load_brg_review_issue
-- Purpose:    the review <-> issue bridge: the issues of a review's project opened or closed within the
--             review's window, one row per (review, issue, activity) where activity is 'opened' (the
--             issue's created event) or 'closed' (its first closed event in the window; a reopened and
--             closed again issue counts once). The window is the p_window_days local days ending on the
--             review's date: the local date it was issued, else its due date, else its planned date.
--             Cancelled and deleted reviews have no window; issues deleted now count in none (one that came
--             back counts again). Events, their local dates and projects come from fact.issue_event: an
--             event counts for the project its issue belonged to at that time. A later change of the status map (which statuses close) or
--             of the business time zone re-derives nothing here, as it re-derives no issue event.
--             Incremental: the rows of reviews with a version (or whose service has a version) written
--             after p_since_run_id, and of issues with a version written since then, are derived
--             again and replace the stored ones, identical rows left alone; a new window length re-derives
--             every row (each row records the window length it was derived with).
-- Parameters: p_run_id; p_as_of (unused); p_time_zone: the business time zone (IANA), for the issued date;
--             p_window_days: the window length in days, 1 to 366 (setting review_issue_window_days);
--             p_since_run_id: the last run whose fact phase committed (NULL: never), given by the run log.
--             rows_read (rows derived), rows_inserted, rows_deleted (INOUT, leave out): for the run log.
-- Reads:      dim.review, dim.service, dim.issue, dim.issue_key, fact.issue_event, brg.review_issue.
-- Writes:     brg.review_issue.
CREATE OR REPLACE PROCEDURE warehouse.load_brg_review_issue(
    p_run_id bigint,
    p_as_of timestamptz,
    p_time_zone text,
    p_window_days integer,
    p_since_run_id bigint,
    INOUT rows_read bigint DEFAULT 0,
    INOUT rows_inserted bigint DEFAULT 0,
    INOUT rows_deleted bigint DEFAULT 0
)
LANGUAGE plpgsql
-- its own search_path: the caller's (dim ahead of pg_catalog, say) cannot change what a name means
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_last_run bigint := p_since_run_id;
BEGIN
    IF p_window_days IS NULL OR p_window_days NOT BETWEEN 1 AND 366 THEN
        RAISE EXCEPTION 'load_brg_review_issue: window of % days is not allowed', p_window_days
            USING HINT = 'Set review_issue_window_days (PMW_REVIEW_ISSUE_WINDOW_DAYS) to a whole number from 1 to 366.';
    END IF;
    -- every run leaves all rows with one window length (a change re-derives them all): one row tells
    IF (SELECT window_days FROM brg.review_issue LIMIT 1) <> p_window_days THEN
        v_last_run := NULL;  -- the window length changed: every review's window moved
    END IF;

    DROP TABLE IF EXISTS pg_temp.bridge_review, pg_temp.bridge_changed_review, pg_temp.bridge_issue, pg_temp.bridge_pair,
        pg_temp.bridge_old;
    -- every current review with a window, and whether it must be derived again
    CREATE TEMP TABLE bridge_review ON COMMIT DROP AS
    SELECT
        r.review_id,
        s.project_id,
        -- date keys (YYYYMMDD) order like the dates, so the window is a range of event_date_key
        to_char(w.window_end - (p_window_days - 1), 'YYYYMMDD')::integer AS window_start_key,
        to_char(w.window_end, 'YYYYMMDD')::integer AS window_end_key,
        v_last_run IS NULL OR r.run_id > v_last_run OR s.run_id > v_last_run AS is_changed
    FROM dim.review AS r
    JOIN dim.service AS s ON s.service_id = r.service_id AND s.is_current AND NOT s.is_deleted
    CROSS JOIN LATERAL (
        SELECT COALESCE((r.actual_issued_at AT TIME ZONE p_time_zone)::date, r.due_date, r.planned_date) AS window_end
    ) AS w
    WHERE r.is_current AND r.review_sk <> -1 AND NOT r.is_deleted AND r.status IS DISTINCT FROM 'cancelled'
        AND s.project_id IS NOT NULL AND w.window_end IS NOT NULL;
    ANALYZE pg_temp.bridge_review;

    -- reviews whose rows are replaced: the changed ones, including those that lost their window
    CREATE TEMP TABLE bridge_changed_review ON COMMIT DROP AS
    SELECT review_id FROM pg_temp.bridge_review WHERE is_changed
    UNION
    SELECT r.review_id
    FROM dim.review AS r
    WHERE v_last_run IS NOT NULL AND r.run_id > v_last_run AND r.review_sk <> -1
    UNION
    SELECT r.review_id
    FROM dim.service AS s
    JOIN dim.review AS r ON r.service_id = s.service_id AND r.is_current
    WHERE v_last_run IS NOT NULL AND s.run_id > v_last_run;

    -- issues whose events may have changed since the last run
    CREATE TEMP TABLE bridge_issue ON COMMIT DROP AS
    SELECT DISTINCT k.issue_key
    FROM dim.issue AS d
    JOIN dim.issue_key AS k
        ON k.source_system = d.source_system AND k.source_project_id = d.source_project_id
        AND k.source_issue_id = d.source_issue_id
    WHERE v_last_run IS NOT NULL AND d.run_id > v_last_run AND d.issue_sk <> -1;
    ANALYZE pg_temp.bridge_issue;

    -- the changed reviews' windows are read through the (project, event date) index of the opened and
    -- closed events; the changed issues' events are matched against every review of their project
    CREATE TEMP TABLE bridge_pair ON COMMIT DROP AS
    WITH candidate AS (
        SELECT r.review_id, e.issue_key, e.event_type, e.event_at, e.event_date_key
        FROM pg_temp.bridge_review AS r
        JOIN fact.issue_event AS e
            ON e.project_id = r.project_id AND e.event_date_key BETWEEN r.window_start_key AND r.window_end_key
            AND e.event_type IN ('created', 'closed')
        WHERE r.is_changed
        UNION
        SELECT r.review_id, e.issue_key, e.event_type, e.event_at, e.event_date_key
        FROM pg_temp.bridge_issue AS c
        JOIN fact.issue_event AS e ON e.issue_key = c.issue_key AND e.event_type IN ('created', 'closed')
        JOIN pg_temp.bridge_review AS r
            ON r.project_id = e.project_id AND e.event_date_key BETWEEN r.window_start_key AND r.window_end_key
    ),

    -- an issue deleted now counts in no window, and one that came back (flag cleared, or back in its
    -- tracker project) counts again: its current version decides, not a deleted event in its past. A
    -- deletion and a return each write an issue version, which re-derives the issue's rows
    matched AS (
        SELECT c.*
        FROM candidate AS c
        JOIN dim.issue_key AS k ON k.issue_key = c.issue_key
        JOIN dim.issue AS d
            ON d.source_system = k.source_system AND d.source_project_id = k.source_project_id
            AND d.source_issue_id = k.source_issue_id AND d.is_current AND NOT d.is_deleted
    )

    SELECT
        review_id,
        issue_key,
        CASE event_type WHEN 'created' THEN 'opened' ELSE 'closed' END::varchar(10) AS activity,
        min(event_at) AS event_at,
        min(event_date_key) AS event_date_key
    FROM matched
    GROUP BY review_id, issue_key, event_type;

    SELECT count(*) INTO rows_read FROM pg_temp.bridge_pair;

    -- the stored rows in scope: each set probes its own index (an OR of the two would scan the bridge)
    CREATE TEMP TABLE bridge_old ON COMMIT DROP AS
    SELECT b.review_id, b.issue_key, b.activity
    FROM brg.review_issue AS b
    JOIN pg_temp.bridge_changed_review AS c ON c.review_id = b.review_id
    UNION
    SELECT b.review_id, b.issue_key, b.activity
    FROM brg.review_issue AS b
    JOIN pg_temp.bridge_issue AS c ON c.issue_key = b.issue_key
    UNION
    SELECT b.review_id, b.issue_key, b.activity
    FROM brg.review_issue AS b
    WHERE v_last_run IS NULL;

    DELETE FROM brg.review_issue AS b
    USING pg_temp.bridge_old AS o
    WHERE b.review_id = o.review_id AND b.issue_key = o.issue_key AND b.activity = o.activity
        AND NOT EXISTS (
            SELECT 1 FROM pg_temp.bridge_pair AS n
            WHERE n.review_id = b.review_id AND n.issue_key = b.issue_key AND n.activity = b.activity
                AND n.event_at = b.event_at AND n.event_date_key = b.event_date_key
                AND b.window_days = p_window_days
        );
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;

    INSERT INTO brg.review_issue (review_id, issue_key, activity, event_at, event_date_key, window_days, run_id)
    SELECT review_id, issue_key, activity, event_at, event_date_key, p_window_days, p_run_id
    FROM pg_temp.bridge_pair
    ORDER BY review_id, issue_key
    ON CONFLICT (review_id, issue_key, activity) DO NOTHING;
    GET DIAGNOSTICS rows_inserted = ROW_COUNT;
    IF rows_inserted > 10000 THEN
        ANALYZE brg.review_issue;  -- a first load: statistics from an empty table mislead the next run
    END IF;
END;
$$;
