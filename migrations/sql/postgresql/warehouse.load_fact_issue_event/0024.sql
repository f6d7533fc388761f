-- warehouse.load_fact_issue_event
-- Purpose:    issue activity events from dim.issue history, each timed from the source's change time:
--             created (at created_at), status_change (the raw status, trimmed and lower-cased, differs from
--             the previous version's: a new spelling of the same status is no change),
--             closed and reopened (the status map's closed flag flips with the status: both statuses are
--             read with the map in effect at the change, or as first loaded for a change before that, so a
--             later map change re-reads no history; an unmapped status is open; raw statuses meet the map
--             trimmed and case-insensitively, with the same rule for map rows that differ only by case or
--             spaces as the daily snapshot; a deleted issue is not reopened),
--             deleted (the deletion flag is set). A first version that is already closed or deleted (an
--             issue first seen in that state) gives closed at closed_at / deleted at deleted_at; one first
--             seen closed and deleted gives both (it was closed before it was deleted).
--             Each event carries the PM project of the issue version it comes from (when that version has
--             none, the project another version resolved; -1 when none did), so the review <-> issue bridge
--             finds a project's events in a date range by index.
--             Incremental: the events of every issue with a version written after p_since_run_id are
--             derived again from its whole history and replace the stored ones (a late, out-of-order version
--             changes its neighbours' events too); other issues are not touched.
-- Parameters: p_run_id; p_as_of (unused: events carry their own times; kept for the common signature);
--             p_time_zone: the business time zone (IANA), for event_date_key; p_since_run_id: the last run
--             whose fact phase committed (NULL: never), given by the run log.
--             rows_read (events derived), rows_inserted, rows_deleted (INOUT, leave out): for the run log.
-- Reads:      dim.issue, dim.issue_key, dim.status_map, dim.date. Writes: fact.issue_event.
CREATE OR REPLACE PROCEDURE warehouse.load_fact_issue_event(
    p_run_id bigint,
    p_as_of timestamptz,
    p_time_zone text,
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
    DROP TABLE IF EXISTS pg_temp.event_issue, pg_temp.event_version, pg_temp.event_status_at, pg_temp.event_new;
    -- the issues to derive again (all of them the first time); their durable keys come from the daily
    -- snapshot's loader, which runs first
    CREATE TEMP TABLE event_issue ON COMMIT DROP AS
    SELECT DISTINCT k.issue_key, k.source_system, k.source_project_id, k.source_issue_id
    FROM dim.issue AS d
    JOIN dim.issue_key AS k
        ON k.source_system = d.source_system AND k.source_project_id = d.source_project_id
        AND k.source_issue_id = d.source_issue_id
    WHERE d.issue_sk <> -1 AND (v_last_run IS NULL OR d.run_id > v_last_run);
    ANALYZE pg_temp.event_issue;

    -- Each version of those issues in issue order, with the instant its statuses are read at: its start, or
    -- the status map's first load for a start before it (the map as first loaded is the best knowledge of its
    -- past). In a table of its own, analysed, as the T-SQL version does: the planner cannot estimate the join
    -- on three text columns (it expects 2 rows), and planned everything after it as nested loops over CTEs,
    -- 33 s of a one-day delta at a million issues (issue #17); from a sized table it hashes.
    CREATE TEMP TABLE event_version ON COMMIT DROP AS
    SELECT
        e.issue_key, v.issue_sk, v.source_system, v.project_id, v.valid_from, v.created_at, v.closed_at,
        v.deleted_at, v.raw_status, v.is_deleted,
        row_number() OVER w AS version_no,
        lag(v.raw_status) OVER w AS previous_status,
        lag(v.is_deleted) OVER w AS previous_deleted,
        GREATEST(v.valid_from, (
            SELECT min(f.valid_from) FROM dim.status_map AS f WHERE f.status_map_sk <> -1
        )) AS map_at
    FROM pg_temp.event_issue AS e
    JOIN dim.issue AS v
        ON v.source_system = e.source_system AND v.source_project_id = e.source_project_id
        AND v.source_issue_id = e.source_issue_id
    WINDOW w AS (PARTITION BY e.issue_key ORDER BY v.valid_from);
    ANALYZE pg_temp.event_version;

    -- a status change is read with the map in effect when it happened, both its old and its new status, so
    -- a later map change re-reads no history (the daily snapshot reads each day's map too). Each spelling
    -- and instant once: its trimmed, lower-case key meets the map rows in effect then; of map rows that
    -- differ only by case or spaces the first in code-point order wins (then the shorter), as in the daily
    -- snapshot
    CREATE TEMP TABLE event_status_at ON COMMIT DROP AS
    WITH lookup AS (
        SELECT source_system, raw_status, map_at FROM pg_temp.event_version WHERE raw_status IS NOT NULL
        UNION
        SELECT source_system, previous_status, map_at FROM pg_temp.event_version WHERE previous_status IS NOT NULL
    )
    SELECT DISTINCT ON (l.source_system, l.raw_status, l.map_at) l.source_system, l.raw_status, l.map_at,
        sm.is_closed
    FROM lookup AS l
    JOIN dim.status_map AS sm
        ON sm.source_system = l.source_system AND lower(btrim(sm.raw_status)) = lower(btrim(l.raw_status))
        AND sm.valid_from <= l.map_at AND sm.valid_to > l.map_at AND NOT sm.is_deleted
        AND sm.status_map_sk <> -1
    ORDER BY l.source_system, l.raw_status, l.map_at, sm.raw_status COLLATE "C", octet_length(sm.raw_status);
    ANALYZE pg_temp.event_status_at;

    CREATE TEMP TABLE event_new ON COMMIT DROP AS
    WITH versions AS (
        SELECT
            v.issue_key,
            v.issue_sk,
            -- a version without a PM project takes the one another version resolved (the issue was
            -- always that project's; the warehouse learnt it later), else -1
            COALESCE(v.project_id, MAX(v.project_id) OVER (PARTITION BY v.issue_key), -1) AS project_id,
            v.valid_from,
            v.created_at,
            v.closed_at,
            v.deleted_at,
            v.raw_status,
            v.is_deleted,
            COALESCE(m.is_closed, FALSE) AS is_closed,
            v.version_no,
            v.previous_status,
            COALESCE(pm.is_closed, FALSE) AS previous_closed,
            v.previous_deleted
        FROM pg_temp.event_version AS v
        LEFT JOIN pg_temp.event_status_at AS m
            ON m.source_system = v.source_system AND m.raw_status = v.raw_status AND m.map_at = v.map_at
        LEFT JOIN pg_temp.event_status_at AS pm
            ON pm.source_system = v.source_system AND pm.raw_status = v.previous_status AND pm.map_at = v.map_at
    ),

    events AS (
        SELECT issue_key, issue_sk, project_id, 'created' AS event_type,
            COALESCE(created_at, valid_from) AS event_at, NULL AS from_status, raw_status AS to_status
        FROM versions WHERE version_no = 1
        UNION ALL
        SELECT issue_key, issue_sk, project_id, 'closed', COALESCE(closed_at, valid_from), NULL, raw_status
        -- first seen closed: closed at closed_at, deleted or not (it was closed before it was deleted)
        FROM versions WHERE version_no = 1 AND is_closed
        UNION ALL
        SELECT issue_key, issue_sk, project_id, 'deleted', COALESCE(deleted_at, valid_from), NULL, raw_status
        FROM versions WHERE version_no = 1 AND is_deleted
        UNION ALL
        SELECT issue_key, issue_sk, project_id, 'status_change', valid_from, previous_status, raw_status
        -- a new spelling of the same status (case, spaces) is no change: business-rules.md makes them one
        FROM versions WHERE version_no > 1 AND lower(btrim(raw_status)) IS DISTINCT FROM lower(btrim(previous_status))
        UNION ALL
        SELECT issue_key, issue_sk, project_id, 'closed', valid_from, previous_status, raw_status
        FROM versions WHERE version_no > 1 AND is_closed AND NOT previous_closed
        UNION ALL
        SELECT issue_key, issue_sk, project_id, 'reopened', valid_from, previous_status, raw_status
        FROM versions WHERE version_no > 1 AND NOT is_closed AND previous_closed AND NOT is_deleted
        UNION ALL
        SELECT issue_key, issue_sk, project_id, 'deleted', valid_from, previous_status, raw_status
        FROM versions WHERE version_no > 1 AND is_deleted AND NOT previous_deleted
    )

    SELECT
        ev.issue_key,
        ev.event_type::varchar(20) AS event_type,
        ev.event_at,
        COALESCE(d.date_key, -1) AS event_date_key,
        ev.issue_sk,
        ev.project_id,
        ev.from_status::varchar(50) AS from_status,
        ev.to_status::varchar(50) AS to_status
    FROM events AS ev
    LEFT JOIN dim.date AS d ON d.full_date = (ev.event_at AT TIME ZONE p_time_zone)::date;

    SELECT count(*) INTO rows_read FROM pg_temp.event_new;

    -- replace the derived issues' events, leaving identical ones alone
    DELETE FROM fact.issue_event AS f
    USING pg_temp.event_issue AS e
    WHERE f.issue_key = e.issue_key
        AND NOT EXISTS (
            SELECT 1 FROM pg_temp.event_new AS n
            WHERE n.issue_key = f.issue_key AND n.event_type = f.event_type AND n.event_at = f.event_at
                AND n.event_date_key = f.event_date_key AND n.issue_sk = f.issue_sk
                AND n.project_id = f.project_id
                AND n.from_status IS NOT DISTINCT FROM f.from_status AND n.to_status IS NOT DISTINCT FROM f.to_status
        );
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;

    INSERT INTO fact.issue_event (
        issue_key, event_type, event_at, event_date_key, issue_sk, project_id, from_status, to_status, run_id
    )
    SELECT issue_key, event_type, event_at, event_date_key, issue_sk, project_id, from_status, to_status, p_run_id
    FROM pg_temp.event_new
    ORDER BY issue_key, event_at
    ON CONFLICT (issue_key, event_type, event_at) DO NOTHING;
    GET DIAGNOSTICS rows_inserted = ROW_COUNT;
    IF rows_inserted > 10000 THEN
        -- a first load: statistics taken while the table was empty would make the next run's joins
        -- against it nested loops over every row
        ANALYZE fact.issue_event;
    END IF;
END;
$$;
