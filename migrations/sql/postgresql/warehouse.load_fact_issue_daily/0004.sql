-- warehouse.load_fact_issue_daily
-- Purpose:    the daily issue snapshot: one row per (issue, local date) for every issue that exists and
--             is not deleted at the end of that day in the business time zone (for the as-of date: at
--             the as-of instant), with the dimension versions in effect then.
--             Dates computed by a run: from the day after the last snapshot (days the schedule missed),
--             or from the earliest local date a dimension version written since the last snapshot
--             run starts on (late data), whichever is earlier, up to the as-of date; never before the
--             first snapshot date (the first run starts the series at its as-of date).
--             The computed rows are compared with the stored ones by grain and row hash: identical
--             rows are left alone, changed ones updated, missing ones inserted, stale ones deleted,
--             so a re-run with the same as-of writes nothing.
--             Rules (business-rules.md): closed <=> the status map says closed (an unmapped status is
--             open, status_map_sk = -1); priority from the priority map, else
--             warehouse.normalize_priority; high priority <=> Critical or High; backlog age = snapshot
--             date - created date for open issues; resolution days = closed date - created date for
--             closed issues. A project absent from the version lookup resolves to its earliest version,
--             an issue without a project to the unknown member (-1).
--             Durable issue keys (dim.issue_key) are assigned here to issues seen for the first time.
-- Parameters: p_run_id; p_as_of: the run's as-of instant; p_time_zone: the business time zone (IANA).
--             rows_inserted, rows_updated, rows_deleted (INOUT, leave out): counts for the run log.
-- Reads:      dim.issue, dim.project, dim.status_map, dim.priority_map, ctl.run_step (the last snapshot run).
-- Writes:     dim.issue_key, fact.issue_daily.
CREATE OR REPLACE PROCEDURE warehouse.load_fact_issue_daily(
    p_run_id bigint,
    p_as_of timestamptz,
    p_time_zone text,
    INOUT rows_inserted bigint DEFAULT 0,
    INOUT rows_updated bigint DEFAULT 0,
    INOUT rows_deleted bigint DEFAULT 0
)
LANGUAGE plpgsql
SET work_mem = '256MB'
AS $$
DECLARE
    v_as_of_date date := (p_as_of AT TIME ZONE p_time_zone)::date;
    v_first_date date;
    v_last_date date;
    v_last_run bigint;
    v_late_date date;
    v_from date;
BEGIN
    IF p_time_zone IS NULL OR NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = p_time_zone) THEN
        RAISE EXCEPTION 'load_fact_issue_daily: time zone % is not an IANA zone name', p_time_zone
            USING HINT = 'Set PMW_BUSINESS_TIMEZONE to a name such as Australia/Sydney.';
    END IF;

    INSERT INTO dim.issue_key (source_system, source_project_id, source_issue_id)
    SELECT d.source_system, d.source_project_id, d.source_issue_id
    FROM dim.issue AS d
    WHERE d.is_current AND d.issue_sk <> -1
        AND NOT EXISTS (
            SELECT 1 FROM dim.issue_key AS k
            WHERE k.source_system = d.source_system AND k.source_project_id = d.source_project_id
                AND k.source_issue_id = d.source_issue_id
        );

    SELECT min(to_date(snapshot_date_key::text, 'YYYYMMDD')), max(to_date(snapshot_date_key::text, 'YYYYMMDD')),
        max(run_id)
    INTO v_first_date, v_last_date, v_last_run
    FROM fact.issue_daily;
    -- the last run that took a snapshot, even one that found nothing to change
    SELECT GREATEST(max(run_id), v_last_run) INTO v_last_run
    FROM ctl.run_step
    WHERE step_name = 'warehouse.load_fact_issue_daily' AND status = 'success' AND run_id < p_run_id;

    IF v_first_date IS NULL THEN
        v_from := v_as_of_date;
    ELSE
        -- versions written since the last snapshot run change every day from their start onwards
        SELECT min((valid_from AT TIME ZONE p_time_zone)::date) INTO v_late_date
        FROM dim.issue WHERE run_id > v_last_run;
        v_from := GREATEST(v_first_date, LEAST(v_last_date + 1, v_late_date, v_as_of_date));
    END IF;

    DROP TABLE IF EXISTS pg_temp.snapshot;
    CREATE TEMP TABLE snapshot ON COMMIT DROP AS
    WITH days AS (
        SELECT
            day::date AS snapshot_date,
            -- the last instant of the day, or the as-of instant for the as-of date
            LEAST(((day::date + 1)::timestamp AT TIME ZONE p_time_zone) - interval '1 microsecond', p_as_of) AS at
        FROM generate_series(v_from, v_as_of_date, interval '1 day') AS series (day)
    ),

    versions AS (
        SELECT d.snapshot_date, d.at, i.*
        FROM days AS d
        JOIN dim.issue AS i ON i.valid_from <= d.at AND i.valid_to > d.at
        WHERE NOT i.is_deleted AND i.issue_sk <> -1
    ),

    first_project AS (
        SELECT DISTINCT ON (project_id) project_id, project_sk
        FROM dim.project WHERE project_sk <> -1
        ORDER BY project_id, valid_from
    ),

    resolved AS (
        SELECT
            v.snapshot_date,
            k.issue_key,
            v.issue_sk,
            CASE WHEN v.project_id IS NULL THEN -1 ELSE COALESCE(p.project_sk, fp.project_sk, -1) END AS project_sk,
            COALESCE(s.status_map_sk, -1) AS status_map_sk,
            COALESCE(s.is_closed, FALSE) AS is_closed,
            (v.created_at AT TIME ZONE p_time_zone)::date AS created_date,
            (v.closed_at AT TIME ZONE p_time_zone)::date AS closed_date,
            CASE WHEN pm.priority_map_sk IS NOT NULL THEN pm.normalized_priority
                ELSE warehouse.normalize_priority(v.raw_priority) END AS priority
        FROM versions AS v
        JOIN dim.issue_key AS k
            ON k.source_system = v.source_system AND k.source_project_id = v.source_project_id
            AND k.source_issue_id = v.source_issue_id
        LEFT JOIN dim.project AS p ON p.project_id = v.project_id AND p.valid_from <= v.at AND p.valid_to > v.at
        LEFT JOIN first_project AS fp ON fp.project_id = v.project_id
        LEFT JOIN dim.status_map AS s
            ON s.source_system = v.source_system AND s.raw_status = v.raw_status
            AND s.valid_from <= v.at AND s.valid_to > v.at AND NOT s.is_deleted
        LEFT JOIN dim.priority_map AS pm
            ON pm.source_system = v.source_system AND pm.raw_priority = v.raw_priority
            AND pm.valid_from <= v.at AND pm.valid_to > v.at AND NOT pm.is_deleted
    )

    SELECT
        r.*,
        hash_record_extended(ROW(r.issue_sk, r.project_sk, r.status_map_sk, r.created_date_key, r.priority,
            r.is_open, r.is_closed, r.is_high_priority, r.backlog_age_days, r.resolution_days), 0) AS row_hash
    FROM (
        SELECT
            (to_char(snapshot_date, 'YYYYMMDD'))::integer AS snapshot_date_key,
            issue_key,
            issue_sk,
            project_sk,
            status_map_sk,
            COALESCE(to_char(created_date, 'YYYYMMDD')::integer, -1) AS created_date_key,
            priority::varchar(20) AS priority,
            NOT is_closed AS is_open,
            is_closed,
            COALESCE(priority IN ('Critical', 'High'), FALSE) AS is_high_priority,
            CASE WHEN NOT is_closed THEN snapshot_date - created_date END AS backlog_age_days,
            CASE WHEN is_closed THEN closed_date - created_date END AS resolution_days
        FROM resolved
    ) AS r;

    -- rows of the computed dates that no longer exist (an issue deleted, or created later than thought)
    DELETE FROM fact.issue_daily AS f
    WHERE f.snapshot_date_key BETWEEN to_char(v_from, 'YYYYMMDD')::integer AND to_char(v_as_of_date, 'YYYYMMDD')::integer
        AND NOT EXISTS (
            SELECT 1 FROM pg_temp.snapshot AS s
            WHERE s.snapshot_date_key = f.snapshot_date_key AND s.issue_key = f.issue_key
        );
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;

    UPDATE fact.issue_daily AS f
    SET issue_sk = s.issue_sk, project_sk = s.project_sk, status_map_sk = s.status_map_sk,
        created_date_key = s.created_date_key, priority = s.priority, is_open = s.is_open, is_closed = s.is_closed,
        is_high_priority = s.is_high_priority, backlog_age_days = s.backlog_age_days,
        resolution_days = s.resolution_days, row_hash = s.row_hash, run_id = p_run_id
    FROM pg_temp.snapshot AS s
    WHERE s.snapshot_date_key = f.snapshot_date_key AND s.issue_key = f.issue_key AND s.row_hash <> f.row_hash;
    GET DIAGNOSTICS rows_updated = ROW_COUNT;

    INSERT INTO fact.issue_daily (
        snapshot_date_key, issue_key, issue_sk, project_sk, status_map_sk, created_date_key, priority, is_open,
        is_closed, is_high_priority, backlog_age_days, resolution_days, row_hash, run_id
    )
    SELECT
        s.snapshot_date_key, s.issue_key, s.issue_sk, s.project_sk, s.status_map_sk, s.created_date_key, s.priority,
        s.is_open, s.is_closed, s.is_high_priority, s.backlog_age_days, s.resolution_days, s.row_hash, p_run_id
    FROM pg_temp.snapshot AS s
    WHERE NOT EXISTS (
        SELECT 1 FROM fact.issue_daily AS f
        WHERE f.snapshot_date_key = s.snapshot_date_key AND f.issue_key = s.issue_key
    );
    GET DIAGNOSTICS rows_inserted = ROW_COUNT;
END;
$$;
