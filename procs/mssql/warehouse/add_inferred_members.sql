-- warehouse.add_inferred_members
-- Purpose:    business-rules.md's inferred members (same rules as the PostgreSQL version): for each
--             reference between dimensions (an issue's project, a service's project, a review's service, a
--             project's client and type, the assigned user of a service or review, an analytics row's
--             categories, a category's parent), a key that a current row refers to and the parent dimension
--             has never held gets a current inferred row (valid from the beginning of time, attributes NULL),
--             which warehouse.merge_scd2 completes in place when the real row arrives. Only child versions
--             written after @p_since_run_id are read.
-- Parameters: @p_run_id; @p_since_run_id: the last run whose fact phase committed (NULL: never),
--             given by the run log; @p_as_of, @p_time_zone (unused; the common fact signature).
-- Returns:    one row (rows_read, rows_inserted) for the run log.
-- Reads:      dim.*. Writes: inferred rows of dim.project, dim.service, dim.client,
--             dim.project_type, dim.app_user, dim.issue_category.
CREATE OR ALTER PROCEDURE warehouse.add_inferred_members
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
    DECLARE @last_run BIGINT = @p_since_run_id;
    DECLARE @position INT = 1;
    DECLARE @child SYSNAME;
    DECLARE @child_column SYSNAME;
    DECLARE @parent SYSNAME;
    DECLARE @parent_key SYSNAME;
    DECLARE @sql NVARCHAR(MAX);
    DECLARE @references TABLE (
        position INT PRIMARY KEY, child SYSNAME, child_column SYSNAME, parent SYSNAME, parent_key SYSNAME
    );

    -- children before parents: a review's inferred service has no project yet, so nothing cascades
    INSERT INTO @references (position, child, child_column, parent, parent_key)
    VALUES
    (1, N'review', N'service_id', N'service', N'service_id'),
    (2, N'issue', N'project_id', N'project', N'project_id'),
    (3, N'service', N'project_id', N'project', N'project_id'),
    (4, N'project', N'client_id', N'client', N'client_id'),
    (5, N'project', N'type_id', N'project_type', N'type_id'),
    (6, N'service', N'assigned_user_id', N'app_user', N'user_id'),
    (7, N'review', N'assigned_user_id', N'app_user', N'user_id'),
    (8, N'issue_analytics', N'discipline_category_id', N'issue_category', N'category_id'),
    (9, N'issue_analytics', N'primary_category_id', N'issue_category', N'category_id'),
    (10, N'issue_analytics', N'secondary_category_id', N'issue_category', N'category_id'),
    (11, N'issue_category', N'parent_category_id', N'issue_category', N'category_id');

    WHILE @position <= (SELECT MAX(position) FROM @references)
    BEGIN
        SELECT @child = child, @child_column = child_column, @parent = parent, @parent_key = parent_key
        FROM @references WHERE position = @position;
        SET @sql = N'INSERT INTO dim.' + QUOTENAME(@parent) + N' (' + QUOTENAME(@parent_key)
            + N', is_deleted, row_hash, valid_from, valid_to, is_current, is_inferred, run_id) '
            + N'SELECT DISTINCT c.' + QUOTENAME(@child_column) + N', 0, N''inferred'', '
            + N'CAST(''1900-01-01T00:00:00+00:00'' AS DATETIMEOFFSET), '
            + N'CAST(''9999-12-31T00:00:00+00:00'' AS DATETIMEOFFSET), 1, 1, @run_id '
            + N'FROM dim.' + QUOTENAME(@child) + N' AS c '
            + N'WHERE c.is_current = 1 AND c.is_deleted = 0 AND c.' + QUOTENAME(@child_column) + N' IS NOT NULL '
            + N'AND c.' + QUOTENAME(@child + N'_sk') + N' <> -1 AND (@last_run IS NULL OR c.run_id > @last_run) '
            + N'AND NOT EXISTS (SELECT 1 FROM dim.' + QUOTENAME(@parent) + N' AS p WHERE p.' + QUOTENAME(@parent_key)
            -- recompiled each time: a plan cached for the first run (@last_run NULL) would scan every run
            + N' = c.' + QUOTENAME(@child_column) + N' AND p.is_current = 1) OPTION (RECOMPILE);';
        EXEC sys.sp_executesql @sql, N'@run_id BIGINT, @last_run BIGINT', @run_id = @p_run_id, @last_run = @last_run;
        SET @rows_inserted = @rows_inserted + @@ROWCOUNT;
        SET @position = @position + 1;
    END;

    SET @rows_read = @rows_inserted;  -- every member computed is new: the query keeps only keys never held
    SELECT @rows_read AS rows_read, @rows_inserted AS rows_inserted;
END;
