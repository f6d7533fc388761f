-- warehouse.load_fact_issue_daily
-- Purpose:    the daily issue snapshot: one row per (issue, local date) for every issue that exists and
--             is not deleted at the end of that day in the business time zone (for the as-of date: at
--             the as-of instant), with the dimension versions in effect then.
--             What a run computes, up to the as-of date and never before the first snapshot date (the
--             first run starts the series at its as-of date): every issue for the days after the last
--             snapshot (days the schedule missed) and from the first day a project or map version
--             written since the last snapshot run starts on; only the issues with a new issue or text
--             analytics version from the first day such a version starts on (late data). "Since the last snapshot run" is since
--             p_since_run_id, the last run whose fact phase committed. Nothing new: nothing computed. A
--             backfill (p_recompute_from, a date) computes every issue from that date on, before the first
--             snapshot date too.
--             The computed rows are compared with the stored ones by grain and values: identical
--             rows are left alone, changed ones updated, missing ones inserted, stale ones deleted,
--             so a re-run with the same as-of writes nothing.
--             Rules (business-rules.md): raw status and priority meet the maps trimmed and
--             case-insensitively (lower(btrim()) on both sides, resolved once per distinct spelling and
--             day, never per issue); when map rows in effect differ only by case or surrounding spaces,
--             the one whose raw value comes first in code-point order wins (then the shorter), as in
--             T-SQL (the status_map_conflicts / priority_map_conflicts checks list such rows).
--             Closed <=> the status map says closed (an unmapped status is open, status_map_sk = -1);
--             priority from the priority map where it has the spelling (even when it maps it to NULL),
--             else warehouse.normalize_priority; high priority <=> Critical or High; backlog age =
--             snapshot date - created date for open issues; resolution days = closed date - created
--             date for closed issues. A project absent from the version lookup resolves to its earliest
--             version, an issue without a project to the unknown member (-1). A day before a map's first
--             load (a backfill before the first run) reads the map as first loaded, as the issue events do.
--             Text analytics: the dim.issue_analytics version in effect at the day's instant, matched by
--             (source system, tracker issue id) as the category bridge does (ProcessedIssues has no
--             project): its scores and discipline / primary category ids, and issue_analytics_sk; none
--             (not processed yet, or deleted): the measures NULL and issue_analytics_sk = -1.
--             Durable issue keys (dim.issue_key) are assigned here to issues seen for the first time.
-- Parameters: p_run_id; p_as_of: the run's as-of instant; p_time_zone: the business time zone (IANA);
--             p_since_run_id: the last run whose fact phase committed (NULL: never), given by the run log;
--             p_recompute_from: the first local date a backfill recomputes for every issue (NULL: none).
--             rows_read (rows computed), rows_inserted, rows_updated, rows_deleted (INOUT, leave out):
--             counts for the run log.
-- Reads:      dim.issue, dim.issue_analytics, dim.project, dim.status_map, dim.priority_map, dim.date.
-- Writes:     dim.issue_key, fact.issue_daily.
CREATE OR REPLACE PROCEDURE warehouse.load_fact_issue_daily(
    p_run_id bigint,
    p_as_of timestamptz,
    p_time_zone text,
    p_since_run_id bigint,
    p_recompute_from date,
    INOUT rows_read bigint DEFAULT 0,
    INOUT rows_inserted bigint DEFAULT 0,
    INOUT rows_updated bigint DEFAULT 0,
    INOUT rows_deleted bigint DEFAULT 0
)
LANGUAGE plpgsql
-- its own search_path: the caller's (dim ahead of pg_catalog, say) cannot change what a name means
SET search_path = pg_catalog, pg_temp
SET work_mem = '256MB'
AS $$
DECLARE
    v_as_of_date date := (p_as_of AT TIME ZONE p_time_zone)::date;
    v_first_date date;
    v_last_date date;
    v_last_run bigint;
    v_late_shared date;
    v_late_issue date;
    v_full_from date;
    v_partial_from date;
    v_from date;
    v_all_issues boolean;
    v_day date;
    v_at timestamptz;
    -- each map's first load: a day before it (a backfill reaching back past the first run) reads the map as
    -- first loaded, the best knowledge of its past, as load_fact_issue_event does; otherwise its statuses
    -- would all be unmapped (open) there
    v_status_map_first timestamptz := (SELECT min(valid_from) FROM dim.status_map WHERE status_map_sk <> -1);
    v_priority_map_first timestamptz := (SELECT min(valid_from) FROM dim.priority_map WHERE priority_map_sk <> -1);
    v_status_at timestamptz;
    v_priority_at timestamptz;
    v_new_keys bigint;
    -- a backfill (pmw run --backfill-from D): every issue from D on
    v_recompute_from date := p_recompute_from;
BEGIN
    IF p_time_zone IS NULL OR NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = p_time_zone) THEN
        RAISE EXCEPTION 'load_fact_issue_daily: time zone % is not an IANA zone name', p_time_zone
            USING HINT = 'Set PMW_BUSINESS_TIMEZONE to a name such as Australia/Sydney.';
    END IF;

    -- min/max of the leading primary-key column: two index probes, whatever the fact's size
    SELECT to_date(min(snapshot_date_key)::text, 'YYYYMMDD'), to_date(max(snapshot_date_key)::text, 'YYYYMMDD')
    INTO v_first_date, v_last_date
    FROM fact.issue_daily;
    -- the last run whose snapshot committed, even one that found nothing to change; without one (a call
    -- outside the flow) the newest run among the last day's rows
    v_last_run := p_since_run_id;
    IF v_last_run IS NULL AND v_last_date IS NOT NULL THEN
        SELECT max(run_id) INTO v_last_run
        FROM fact.issue_daily WHERE snapshot_date_key = to_char(v_last_date, 'YYYYMMDD')::integer;
    END IF;

    -- durable keys for issues first seen since the last snapshot run (all of them the first time)
    INSERT INTO dim.issue_key (source_system, source_project_id, source_issue_id)
    SELECT DISTINCT d.source_system, d.source_project_id, d.source_issue_id
    FROM dim.issue AS d
    WHERE d.issue_sk <> -1 AND (v_last_run IS NULL OR d.run_id > v_last_run)
    ORDER BY 1, 2, 3  -- in key order the unique index grows at its right edge
    ON CONFLICT DO NOTHING;  -- an index probe per key: no plan depends on the table's (stale) statistics
    GET DIAGNOSTICS v_new_keys = ROW_COUNT;
    IF v_new_keys > 1000 THEN
        ANALYZE dim.issue_key;  -- the snapshot joins it: give the planner its new size
    END IF;

    IF v_first_date IS NULL THEN
        v_full_from := v_as_of_date;  -- the series starts at the first snapshot run's as-of date
    ELSE
        -- a new version of a project or a map can change any issue's row from the day it starts on
        SELECT min((valid_from AT TIME ZONE p_time_zone)::date) INTO v_late_shared
        FROM (
            SELECT valid_from FROM dim.project WHERE run_id > v_last_run
            UNION ALL SELECT valid_from FROM dim.status_map WHERE run_id > v_last_run
            UNION ALL SELECT valid_from FROM dim.priority_map WHERE run_id > v_last_run
        ) AS changed;
        -- a new version of an issue, or of its text analytics, only that issue's rows
        SELECT min((valid_from AT TIME ZONE p_time_zone)::date) INTO v_late_issue
        FROM (
            SELECT valid_from FROM dim.issue WHERE run_id > v_last_run
            UNION ALL SELECT valid_from FROM dim.issue_analytics WHERE run_id > v_last_run
        ) AS changed;
        -- every issue for the days the schedule missed and those a shared change reaches
        v_full_from := GREATEST(v_first_date, LEAST(v_last_date + 1, v_late_shared));
        v_partial_from := GREATEST(v_first_date, v_late_issue);
    END IF;
    IF v_recompute_from IS NOT NULL THEN  -- earlier than the first snapshot date too: history is extended
        v_full_from := LEAST(COALESCE(v_full_from, v_recompute_from), v_recompute_from);
    END IF;
    v_from := LEAST(v_full_from, v_partial_from);
    IF v_from IS NULL OR v_from > v_as_of_date THEN
        RETURN;  -- nothing happened since the last snapshot of this date
    END IF;

    DROP TABLE IF EXISTS pg_temp.snapshot, pg_temp.snapshot_day, pg_temp.changed_issue, pg_temp.alive,
        pg_temp.raw_status, pg_temp.raw_priority;
    CREATE TEMP TABLE snapshot (LIKE fact.issue_daily) ON COMMIT DROP;
    CREATE TEMP TABLE alive ON COMMIT DROP AS
    SELECT 0::bigint AS issue_key, issue_sk, source_system, source_issue_id, project_id, raw_status, raw_priority,
        created_at, closed_at
    FROM dim.issue WITH NO DATA;
    -- every spelling the trackers used, once, with the key it meets the maps by (business-rules.md:
    -- trimmed, case-insensitive): each day resolves these few rows, not a million issues
    CREATE TEMP TABLE raw_status ON COMMIT DROP AS
    SELECT source_system, raw_status, lower(btrim(raw_status)) AS status_key
    FROM (SELECT DISTINCT source_system, raw_status FROM dim.issue WHERE raw_status IS NOT NULL) AS spelt;
    CREATE TEMP TABLE raw_priority ON COMMIT DROP AS
    SELECT source_system, raw_priority, lower(btrim(raw_priority)) AS priority_key
    FROM (SELECT DISTINCT source_system, raw_priority FROM dim.issue WHERE raw_priority IS NOT NULL) AS spelt;
    ANALYZE pg_temp.raw_status;
    ANALYZE pg_temp.raw_priority;
    CREATE TEMP TABLE snapshot_day (snapshot_date_key integer PRIMARY KEY, all_issues boolean NOT NULL)
        ON COMMIT DROP;
    CREATE TEMP TABLE changed_issue ON COMMIT DROP AS
    SELECT k.issue_key
    FROM dim.issue AS d
    JOIN dim.issue_key AS k
        ON k.source_system = d.source_system AND k.source_project_id = d.source_project_id
        AND k.source_issue_id = d.source_issue_id
    WHERE v_partial_from < COALESCE(v_full_from, 'infinity') AND d.run_id > v_last_run
    UNION  -- analytics know an issue by (source system, tracker issue id): every issue that matches
    SELECT k.issue_key
    FROM dim.issue_analytics AS a
    JOIN dim.issue_key AS k ON k.source_system = a.source_system AND k.source_issue_id = a.source_issue_id
    WHERE v_partial_from < COALESCE(v_full_from, 'infinity') AND a.run_id > v_last_run
        AND a.issue_analytics_sk <> -1;
    ANALYZE pg_temp.changed_issue;

    -- one statement per day, with the day's instant as a value: the planner then estimates the
    -- version lookups from the statistics (a join to a series of days left it guessing one row)
    FOR v_day IN SELECT generate_series(v_from, v_as_of_date, interval '1 day')::date LOOP
        -- the last instant of the day, or the as-of instant for the as-of date
        v_at := LEAST(((v_day + 1)::timestamp AT TIME ZONE p_time_zone) - interval '1 microsecond', p_as_of);
        v_status_at := GREATEST(v_at, v_status_map_first);  -- GREATEST ignores NULL: no map yet, v_at
        v_priority_at := GREATEST(v_at, v_priority_map_first);
        v_all_issues := v_day >= COALESCE(v_full_from, 'infinity');
        INSERT INTO pg_temp.snapshot_day VALUES (to_char(v_day, 'YYYYMMDD')::integer, v_all_issues);

        -- The issue versions alive at the instant, with their durable keys, land in a table of their own
        -- first: the planner cannot estimate a join on three text columns (it expects one row, then
        -- nests loops over a million), but it can size an analysed table.
        TRUNCATE pg_temp.alive;
        INSERT INTO pg_temp.alive
        SELECT k.issue_key, v.issue_sk, v.source_system, v.source_issue_id, v.project_id, v.raw_status,
            v.raw_priority, v.created_at, v.closed_at
        FROM dim.issue AS v
        JOIN dim.issue_key AS k
            ON k.source_system = v.source_system AND k.source_project_id = v.source_project_id
            AND k.source_issue_id = v.source_issue_id
        -- a deleted version alive before its deleted_at: an issue first seen deleted lived from its
        -- created_at (the version's start) until then
        WHERE v.valid_from <= v_at AND v.valid_to > v_at AND (NOT v.is_deleted OR v.deleted_at > v_at)
            AND v.issue_sk <> -1
            AND (v_all_issues OR k.issue_key IN (SELECT issue_key FROM pg_temp.changed_issue));
        ANALYZE pg_temp.alive;

        INSERT INTO pg_temp.snapshot (
            snapshot_date_key, issue_key, issue_sk, project_sk, status_map_sk, created_date_key, priority, is_open,
            is_closed, is_high_priority, backlog_age_days, resolution_days, run_id, issue_analytics_sk,
            urgency_score, complexity_score, sentiment_score, categorization_confidence, discipline_category_id,
            primary_category_id
        )
        WITH first_project AS (
            SELECT DISTINCT ON (project_id) project_id, project_sk
            FROM dim.project WHERE project_sk <> -1
            ORDER BY project_id, valid_from
        ),

        -- each spelling meets the map rows in effect by its trimmed, lower-case key; of map rows that
        -- differ only by case or spaces the first in code-point order wins (collation "C", as BIN2 in
        -- T-SQL; then the shorter: T-SQL compares 'a' and 'a ' as equal)
        status_of AS (
            SELECT DISTINCT ON (r.source_system, r.raw_status)
                r.source_system, r.raw_status, sm.status_map_sk, sm.is_closed
            FROM pg_temp.raw_status AS r
            JOIN dim.status_map AS sm
                ON sm.source_system = r.source_system AND lower(btrim(sm.raw_status)) = r.status_key
                AND sm.valid_from <= v_status_at AND sm.valid_to > v_status_at AND NOT sm.is_deleted
                AND sm.status_map_sk <> -1
            ORDER BY r.source_system, r.raw_status, sm.raw_status COLLATE "C", octet_length(sm.raw_status)
        ),

        -- the fallback rule runs once per tracker spelling, not once per issue (a million calls cost ~1 s)
        priority_of AS (
            SELECT DISTINCT ON (r.source_system, r.raw_priority)
                r.source_system, r.raw_priority,
                CASE WHEN pm.priority_map_sk IS NOT NULL THEN pm.normalized_priority
                    ELSE warehouse.normalize_priority(r.raw_priority) END AS priority
            FROM pg_temp.raw_priority AS r
            LEFT JOIN dim.priority_map AS pm
                ON pm.source_system = r.source_system AND lower(btrim(pm.raw_priority)) = r.priority_key
                AND pm.valid_from <= v_priority_at AND pm.valid_to > v_priority_at AND NOT pm.is_deleted
                AND pm.priority_map_sk <> -1
            ORDER BY r.source_system, r.raw_priority, pm.raw_priority COLLATE "C", octet_length(pm.raw_priority)
        ),

        resolved AS (
            SELECT
                v.issue_key,
                v.issue_sk,
                CASE WHEN v.project_id IS NULL THEN -1 ELSE COALESCE(p.project_sk, fp.project_sk, -1) END AS project_sk,
                COALESCE(s.status_map_sk, -1) AS status_map_sk,
                COALESCE(s.is_closed, FALSE) AS is_closed,
                (v.created_at AT TIME ZONE p_time_zone)::date AS created_date,
                COALESCE(cd.date_key, -1) AS created_date_key,
                (v.closed_at AT TIME ZONE p_time_zone)::date AS closed_date,
                po.priority,
                COALESCE(a.issue_analytics_sk, -1) AS issue_analytics_sk,
                a.urgency_score,
                a.complexity_score,
                a.sentiment_score,
                a.categorization_confidence,
                a.discipline_category_id,
                a.primary_category_id
            FROM pg_temp.alive AS v
            LEFT JOIN dim.project AS p ON p.project_id = v.project_id AND p.valid_from <= v_at AND p.valid_to > v_at
            LEFT JOIN first_project AS fp ON fp.project_id = v.project_id
            LEFT JOIN dim.date AS cd ON cd.full_date = (v.created_at AT TIME ZONE p_time_zone)::date
            LEFT JOIN status_of AS s ON s.source_system = v.source_system AND s.raw_status = v.raw_status
            LEFT JOIN priority_of AS po ON po.source_system = v.source_system AND po.raw_priority = v.raw_priority
            -- the analytics version in effect at the day's instant (a deleted one: none)
            LEFT JOIN dim.issue_analytics AS a
                ON a.source_system = v.source_system AND a.source_issue_id = v.source_issue_id
                AND a.valid_from <= v_at AND a.valid_to > v_at AND NOT a.is_deleted
        ),

        measured AS (
            SELECT
                to_char(v_day, 'YYYYMMDD')::integer AS snapshot_date_key,
                issue_key,
                issue_sk,
                project_sk,
                status_map_sk,
                created_date_key,
                priority::varchar(20) AS priority,
                NOT is_closed AS is_open,
                is_closed,
                COALESCE(priority IN ('Critical', 'High'), FALSE) AS is_high_priority,
                CASE WHEN NOT is_closed THEN v_day - created_date END AS backlog_age_days,
                CASE WHEN is_closed THEN closed_date - created_date END AS resolution_days,
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
            m.snapshot_date_key, m.issue_key, m.issue_sk, m.project_sk, m.status_map_sk, m.created_date_key,
            m.priority, m.is_open, m.is_closed, m.is_high_priority, m.backlog_age_days, m.resolution_days, p_run_id,
            m.issue_analytics_sk, m.urgency_score, m.complexity_score, m.sentiment_score,
            m.categorization_confidence, m.discipline_category_id, m.primary_category_id
        FROM measured AS m;
    END LOOP;
    ANALYZE pg_temp.snapshot;  -- the comparisons below join it with the stored rows
    SELECT count(*) INTO rows_read FROM pg_temp.snapshot;

    -- rows of the computed days and issues that no longer exist (deleted, or created later than thought)
    DELETE FROM fact.issue_daily AS f
    USING pg_temp.snapshot_day AS d
    WHERE f.snapshot_date_key = d.snapshot_date_key
        AND (d.all_issues OR f.issue_key IN (SELECT issue_key FROM pg_temp.changed_issue))
        AND NOT EXISTS (
            SELECT 1 FROM pg_temp.snapshot AS s
            WHERE s.snapshot_date_key = f.snapshot_date_key AND s.issue_key = f.issue_key
        );
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;

    UPDATE fact.issue_daily AS f
    SET issue_sk = s.issue_sk, project_sk = s.project_sk, status_map_sk = s.status_map_sk,
        created_date_key = s.created_date_key, priority = s.priority, is_open = s.is_open, is_closed = s.is_closed,
        is_high_priority = s.is_high_priority, backlog_age_days = s.backlog_age_days,
        resolution_days = s.resolution_days, run_id = p_run_id, issue_analytics_sk = s.issue_analytics_sk,
        urgency_score = s.urgency_score, complexity_score = s.complexity_score, sentiment_score = s.sentiment_score,
        categorization_confidence = s.categorization_confidence, discipline_category_id = s.discipline_category_id,
        primary_category_id = s.primary_category_id
    FROM pg_temp.snapshot AS s
    WHERE s.snapshot_date_key = f.snapshot_date_key AND s.issue_key = f.issue_key
        AND (s.issue_sk, s.project_sk, s.status_map_sk, s.created_date_key, s.priority, s.is_open, s.is_closed,
            s.is_high_priority, s.backlog_age_days, s.resolution_days, s.issue_analytics_sk, s.urgency_score,
            s.complexity_score, s.sentiment_score, s.categorization_confidence, s.discipline_category_id,
            s.primary_category_id)
        IS DISTINCT FROM (f.issue_sk, f.project_sk, f.status_map_sk, f.created_date_key, f.priority, f.is_open,
            f.is_closed, f.is_high_priority, f.backlog_age_days, f.resolution_days, f.issue_analytics_sk,
            f.urgency_score, f.complexity_score, f.sentiment_score, f.categorization_confidence,
            f.discipline_category_id, f.primary_category_id);
    GET DIAGNOSTICS rows_updated = ROW_COUNT;

    INSERT INTO fact.issue_daily (
        snapshot_date_key, issue_key, issue_sk, project_sk, status_map_sk, created_date_key, priority, is_open,
        is_closed, is_high_priority, backlog_age_days, resolution_days, run_id, issue_analytics_sk, urgency_score,
        complexity_score, sentiment_score, categorization_confidence, discipline_category_id, primary_category_id
    )
    SELECT
        s.snapshot_date_key, s.issue_key, s.issue_sk, s.project_sk, s.status_map_sk, s.created_date_key, s.priority,
        s.is_open, s.is_closed, s.is_high_priority, s.backlog_age_days, s.resolution_days, p_run_id,
        s.issue_analytics_sk, s.urgency_score, s.complexity_score, s.sentiment_score, s.categorization_confidence,
        s.discipline_category_id, s.primary_category_id
    FROM pg_temp.snapshot AS s
    ORDER BY s.snapshot_date_key, s.issue_key  -- in primary-key order: the index grows at its right edge
    -- rows already there were updated above; ON CONFLICT, not NOT EXISTS: an anti-join planned against a
    -- table that was empty at its last ANALYZE rescans it for every row it inserts
    ON CONFLICT (snapshot_date_key, issue_key) DO NOTHING;
    GET DIAGNOSTICS rows_inserted = ROW_COUNT;
    IF rows_inserted > 10000 THEN
        -- a first load: statistics taken while the table was empty would make the next run's joins
        -- against it nested loops over every row
        ANALYZE fact.issue_daily;
    END IF;
END;
$$;
