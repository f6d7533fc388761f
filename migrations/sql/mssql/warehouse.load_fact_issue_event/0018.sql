-- warehouse.load_fact_issue_event
-- Purpose:    issue activity events from dim.issue history, each timed from the source's change time
--             (same rules as the PostgreSQL version): created, status_change, closed, reopened, deleted;
--             a first version already closed or deleted gives closed at closed_at / deleted at deleted_at
--             (both when it is closed and deleted).
--             Closed and reopened: both statuses of a change read with the map in effect at it (as first
--             loaded for a change before that), trimmed and case-insensitively; a deleted issue is not reopened.
--             Each event carries the PM project of the issue version it comes from (when that version has
--             none, the project another version resolved; -1 when none did).
--             The events of every issue with a version written after @p_since_run_id are derived
--             again from its whole history and replace the stored ones; other issues are not touched.
--             T-SQL: @p_time_zone is a Windows zone name (sys.time_zone_info).
-- Parameters: @p_run_id; @p_since_run_id: the last run whose fact phase committed (NULL: never),
--             given by the run log; @p_as_of (unused: events carry their own times); @p_time_zone.
-- Returns:    one row (rows_read, rows_inserted, rows_deleted) for the run log.
-- Reads:      dim.issue, dim.issue_key, dim.status_map, dim.date. Writes: fact.issue_event.
CREATE OR ALTER PROCEDURE warehouse.load_fact_issue_event
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

    SELECT DISTINCT k.issue_key, k.source_system, k.source_project_id, k.source_issue_id
    INTO #event_issue
    FROM dim.issue AS d
    INNER JOIN dim.issue_key AS k
        ON k.source_system = d.source_system AND k.source_project_id = d.source_project_id
        AND k.source_issue_id = d.source_issue_id
    WHERE d.issue_sk <> -1 AND (@last_run IS NULL OR d.run_id > @last_run);

    -- each version in issue order, with the instant its statuses are read at: its start, or the status map's
    -- first load for a start before it (the map as first loaded is the best knowledge of its past)
    DECLARE @map_first DATETIMEOFFSET = (SELECT MIN(valid_from) FROM dim.status_map WHERE status_map_sk <> -1);
    SELECT
        e.issue_key,
        v.issue_sk,
        v.source_system,
        v.project_id,
        v.valid_from,
        v.created_at,
        v.closed_at,
        v.deleted_at,
        v.raw_status,
        CAST(v.is_deleted AS INT) AS is_deleted,
        ROW_NUMBER() OVER (PARTITION BY e.issue_key ORDER BY v.valid_from) AS version_no,
        LAG(v.raw_status) OVER (PARTITION BY e.issue_key ORDER BY v.valid_from) AS previous_status,
        LAG(CAST(v.is_deleted AS INT)) OVER (PARTITION BY e.issue_key ORDER BY v.valid_from) AS previous_deleted,
        CASE WHEN v.valid_from < @map_first THEN @map_first ELSE v.valid_from END AS map_at
    INTO #ordered
    FROM #event_issue AS e
    INNER JOIN dim.issue AS v
        ON v.source_system = e.source_system AND v.source_project_id = e.source_project_id
        AND v.source_issue_id = e.source_issue_id;

    -- a status change is read with the map in effect when it happened, both its old and its new status (same
    -- rule as the PostgreSQL version). Each spelling and instant once: its trimmed, lower-case key meets the
    -- map rows in effect then; of map rows that differ only by case or spaces the first in code-point order
    -- wins (BIN2; then the shorter, since 'a' = 'a ' here), as in the PostgreSQL version (collation "C").
    -- SELECT INTO keeps the columns' collation, so the joins below match a spelling as UNION grouped it.
    SELECT ranked.source_system, ranked.raw_status, ranked.map_at, ranked.is_closed
    INTO #status_at
    FROM (
        SELECT
            l.source_system,
            l.raw_status,
            l.map_at,
            CAST(sm.is_closed AS INT) AS is_closed,
            ROW_NUMBER() OVER (
                PARTITION BY l.source_system, l.raw_status, l.map_at
                ORDER BY sm.raw_status COLLATE Latin1_General_BIN2, DATALENGTH(sm.raw_status)
            ) AS n
        FROM (
            SELECT source_system, raw_status, map_at FROM #ordered WHERE raw_status IS NOT NULL
            UNION
            SELECT source_system, previous_status, map_at FROM #ordered WHERE previous_status IS NOT NULL
        ) AS l
        INNER JOIN dim.status_map AS sm
            ON sm.source_system = l.source_system
            AND LOWER(LTRIM(RTRIM(sm.raw_status))) = LOWER(LTRIM(RTRIM(l.raw_status)))
            AND sm.valid_from <= l.map_at AND sm.valid_to > l.map_at AND sm.is_deleted = 0
            AND sm.status_map_sk <> -1
    ) AS ranked
    WHERE ranked.n = 1;

    WITH versions AS (
        SELECT
            o.issue_key,
            o.issue_sk,
            -- a version without a PM project takes the one another version resolved (the issue was
            -- always that project's; the warehouse learnt it later), else -1
            COALESCE(o.project_id, MAX(o.project_id) OVER (PARTITION BY o.issue_key), -1) AS project_id,
            o.valid_from,
            o.created_at,
            o.closed_at,
            o.deleted_at,
            o.raw_status,
            o.is_deleted,
            COALESCE(m.is_closed, 0) AS is_closed,
            o.version_no,
            o.previous_status,
            COALESCE(pm.is_closed, 0) AS previous_closed,
            o.previous_deleted
        FROM #ordered AS o
        LEFT JOIN #status_at AS m
            ON m.source_system = o.source_system AND m.raw_status = o.raw_status AND m.map_at = o.map_at
        LEFT JOIN #status_at AS pm
            ON pm.source_system = o.source_system AND pm.raw_status = o.previous_status AND pm.map_at = o.map_at
    ),

    events AS (
        SELECT issue_key, issue_sk, project_id, N'created' AS event_type,
            COALESCE(created_at, valid_from) AS event_at, CAST(NULL AS NVARCHAR(50)) AS from_status, raw_status AS to_status
        FROM versions WHERE version_no = 1
        UNION ALL
        SELECT issue_key, issue_sk, project_id, N'closed', COALESCE(closed_at, valid_from), NULL, raw_status
        -- first seen closed: closed at closed_at, deleted or not (it was closed before it was deleted)
        FROM versions WHERE version_no = 1 AND is_closed = 1
        UNION ALL
        SELECT issue_key, issue_sk, project_id, N'deleted', COALESCE(deleted_at, valid_from), NULL, raw_status
        FROM versions WHERE version_no = 1 AND is_deleted = 1
        UNION ALL
        SELECT issue_key, issue_sk, project_id, N'status_change', valid_from, previous_status, raw_status
        FROM versions
        -- a new spelling of the same status (case, spaces) is no change: business-rules.md makes them one
        WHERE version_no > 1
            AND (LOWER(LTRIM(RTRIM(raw_status))) <> LOWER(LTRIM(RTRIM(previous_status)))
                OR (raw_status IS NULL AND previous_status IS NOT NULL)
                OR (raw_status IS NOT NULL AND previous_status IS NULL))
        UNION ALL
        SELECT issue_key, issue_sk, project_id, N'closed', valid_from, previous_status, raw_status
        FROM versions WHERE version_no > 1 AND is_closed = 1 AND previous_closed = 0
        UNION ALL
        SELECT issue_key, issue_sk, project_id, N'reopened', valid_from, previous_status, raw_status
        FROM versions WHERE version_no > 1 AND is_closed = 0 AND previous_closed = 1 AND is_deleted = 0
        UNION ALL
        SELECT issue_key, issue_sk, project_id, N'deleted', valid_from, previous_status, raw_status
        FROM versions WHERE version_no > 1 AND is_deleted = 1 AND previous_deleted = 0
    )

    SELECT
        ev.issue_key,
        CAST(ev.event_type AS NVARCHAR(20)) AS event_type,
        ev.event_at,
        COALESCE(d.date_key, -1) AS event_date_key,
        ev.issue_sk,
        ev.project_id,
        CAST(ev.from_status AS NVARCHAR(50)) AS from_status,
        CAST(ev.to_status AS NVARCHAR(50)) AS to_status
    INTO #event_new
    FROM events AS ev
    LEFT JOIN dim.date AS d ON d.full_date = CAST(ev.event_at AT TIME ZONE @p_time_zone AS DATE);
    SET @rows_read = (SELECT COUNT(*) FROM #event_new);

    DELETE f
    FROM fact.issue_event AS f
    INNER JOIN #event_issue AS e ON e.issue_key = f.issue_key
    WHERE NOT EXISTS (
        SELECT f.issue_key, f.event_type, f.event_at, f.event_date_key, f.issue_sk, f.project_id, f.from_status,
            f.to_status
        INTERSECT
        SELECT n.issue_key, n.event_type, n.event_at, n.event_date_key, n.issue_sk, n.project_id, n.from_status,
            n.to_status
        FROM #event_new AS n
    );
    SET @rows_deleted = @@ROWCOUNT;

    INSERT INTO fact.issue_event (
        issue_key, event_type, event_at, event_date_key, issue_sk, project_id, from_status, to_status, run_id
    )
    SELECT DISTINCT n.issue_key, n.event_type, n.event_at, n.event_date_key, n.issue_sk, n.project_id, n.from_status,
        n.to_status, @p_run_id
    FROM #event_new AS n
    WHERE NOT EXISTS (
        SELECT 1 FROM fact.issue_event AS f
        WHERE f.issue_key = n.issue_key AND f.event_type = n.event_type AND f.event_at = n.event_at
    );
    SET @rows_inserted = @@ROWCOUNT;

    SELECT @rows_read AS rows_read, @rows_inserted AS rows_inserted, @rows_deleted AS rows_deleted;
END;
