-- warehouse.load_dim_issue
-- Purpose:    SCD2 history of issues from both trackers, incremental on source_updated_at.
--             Identity is (source system, tracker project, tracker issue id): the issue number is
--             per project. The PM project is taken by key (pm_project_id); only when that is NULL
--             is the tracker's project name used, and only if it names exactly one current project
--             (project_resolution = 'name'), and an issue so resolved keeps that project while its tracker
--             project name stays the same (a PM project renamed later orphans none of its issues);
--             otherwise project_id stays NULL ('unresolved').
--             Timestamps are converted to UTC with each staged row's zone (ACC UTC, Revizto local).
--             The source's deletion flag is a tracked column: a deleted issue gets a deleted version.
--             T-SQL: #incoming is created here, not by a helper procedure, because a temporary
--             table lives only as long as the procedure that created it.
-- Parameters: @p_run_id: rows of stg.issues staged by this run are loaded; @p_as_of: the run's as-of
--             instant.
-- Returns:    one row (rows_inserted, rows_updated, rows_closed, rows_deleted) for the run log.
-- Reads:      stg.issues, dim.project, dim.issue. Writes: dim.issue.
CREATE OR ALTER PROCEDURE warehouse.load_dim_issue
    @p_run_id BIGINT,
    @p_as_of DATETIMEOFFSET
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    DECLARE @rows_inserted BIGINT = 0;
    DECLARE @rows_updated BIGINT = 0;
    DECLARE @rows_closed BIGINT = 0;
    DECLARE @rows_deleted BIGINT = 0;

    SELECT TOP (0)
        source_system, source_project_id, source_issue_id, issue_number, project_id, project_resolution,
        tracker_project_name, title, raw_status, raw_priority, assignee, author, created_at, closed_at,
        deleted_at, is_deleted,
        CAST(NULL AS DATETIMEOFFSET) AS change_at,
        CAST(NULL AS DATETIMEOFFSET) AS first_seen_from
    INTO #incoming
    FROM dim.issue;

    WITH staged AS (
        SELECT
            source, source_project_id, source_issue_id, issue_id, pm_project_id, project_name, title, status,
            priority, assignee, author, is_deleted,
            created_at AT TIME ZONE time_zone AT TIME ZONE 'UTC' AS created_utc,
            closed_at AT TIME ZONE time_zone AT TIME ZONE 'UTC' AS closed_utc,
            deleted_at AT TIME ZONE time_zone AT TIME ZONE 'UTC' AS deleted_utc,
            source_updated_at AT TIME ZONE time_zone AT TIME ZONE 'UTC' AS updated_utc
        FROM stg.issues
        WHERE run_id = @p_run_id
    ),

    project_names AS (
        SELECT project_name, min(project_id) AS project_id, count(*) AS matches
        FROM dim.project
        WHERE is_current = 1 AND is_deleted = 0 AND project_sk <> -1
        GROUP BY project_name
    )

    INSERT INTO #incoming (
        source_system, source_project_id, source_issue_id, issue_number, project_id, project_resolution,
        tracker_project_name, title, raw_status, raw_priority, assignee, author, created_at, closed_at,
        deleted_at, is_deleted, change_at, first_seen_from
    )
    SELECT
        s.source, s.source_project_id, s.source_issue_id, s.issue_id,
        CASE
            WHEN s.pm_project_id IS NOT NULL THEN s.pm_project_id
            WHEN kept.issue_sk IS NOT NULL THEN kept.project_id
            WHEN n.matches = 1 THEN n.project_id
        END,
        CASE
            WHEN s.pm_project_id IS NOT NULL THEN 'key'
            WHEN kept.issue_sk IS NOT NULL THEN kept.project_resolution
            WHEN n.matches = 1 THEN 'name'
            ELSE 'unresolved'
        END,
        s.project_name, s.title, s.status, s.priority, s.assignee, s.author, s.created_utc, s.closed_utc,
        s.deleted_utc, s.is_deleted, s.updated_utc, s.created_utc
    FROM staged AS s
    LEFT JOIN project_names AS n ON s.pm_project_id IS NULL AND n.project_name = s.project_name
    -- once the name resolved the issue's project, the issue keeps it while its tracker project name stays:
    -- a PM project renamed or given a namesake later re-versions and orphans none of its issues. And a row
    -- read again unchanged (a full refresh) keeps its resolution, unresolved too: a project is resolved when a
    -- new state of the issue is loaded, never for its past
    LEFT JOIN dim.issue AS kept
        ON s.pm_project_id IS NULL AND kept.source_system = s.source AND kept.source_project_id = s.source_project_id
        AND kept.source_issue_id = s.source_issue_id AND kept.is_current = 1
        AND kept.project_resolution <> 'key' AND kept.tracker_project_name = s.project_name
        AND (kept.project_resolution = 'name' OR EXISTS (
                SELECT kept.issue_number, kept.title, kept.raw_status, kept.raw_priority, kept.assignee, kept.author,
                    kept.created_at, kept.closed_at, kept.deleted_at, kept.is_deleted
                INTERSECT
                SELECT s.issue_id, s.title, s.status, s.priority, s.assignee, s.author, s.created_utc, s.closed_utc,
                    s.deleted_utc, s.is_deleted
            ));

    EXEC warehouse.merge_scd2
        @p_dimension = N'issue',
        @p_key_columns = N'source_system,source_project_id,source_issue_id',
        @p_full_compare = 0,
        @p_as_of = @p_as_of,
        @p_run_id = @p_run_id,
        @rows_inserted = @rows_inserted OUTPUT,
        @rows_updated = @rows_updated OUTPUT,
        @rows_closed = @rows_closed OUTPUT,
        @rows_deleted = @rows_deleted OUTPUT;

    SELECT
        @rows_inserted AS rows_inserted,
        @rows_updated AS rows_updated,
        @rows_closed AS rows_closed,
        @rows_deleted AS rows_deleted;
END
