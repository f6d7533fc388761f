-- warehouse.close_vanished_keys
-- Purpose:    close, as deleted at the source, every live current key of dim.<@p_dimension> that a
--             set of keys the source still has (@p_present) does not hold, with the same rules as the
--             PostgreSQL version: the current version is closed at @p_as_of and followed by a deleted
--             version; inferred members and keys listed in #pmw_kept_keys (quarantined this run) are
--             never closed. Used by warehouse.merge_scd2 for a full compare (@p_present = #incoming)
--             and by the flow's key-set reconciliation of cursor sources (stg.<source>_keys).
--             Circuit breaker: from @p_min_rows live rows up, closing more than @p_max_delete_share
--             of them throws 50030; below @p_min_rows only closing every live row does. Nothing is
--             written then.
-- Parameters: @p_dimension: table in schema dim; @p_key_columns: its business key, comma-separated;
--             @p_present: the table of keys still at the source; @p_present_columns: the same key's
--             columns there, comma-separated, same order; @p_present_run_id: only its rows of this
--             run_id (NULL: all); @p_max_delete_share (NULL or 1: no breaker); @p_min_rows; @p_as_of;
--             @p_run_id. OUTPUT: @rows_closed, @rows_deleted. @p_report = 1 (the default, a call from
--             the flow) also returns them as a one-row result set; merge_scd2 passes 0.
-- Reads:      @p_present, dim.<@p_dimension>, #pmw_kept_keys (when it exists).
-- Writes:     dim.<@p_dimension>.
CREATE OR ALTER PROCEDURE warehouse.close_vanished_keys
    @p_dimension SYSNAME,
    @p_key_columns NVARCHAR(1000),
    @p_present NVARCHAR(300),
    @p_present_columns NVARCHAR(1000),
    @p_present_run_id BIGINT = NULL,
    @p_max_delete_share DECIMAL(9, 6) = NULL,
    @p_min_rows BIGINT = 20,
    @p_as_of DATETIMEOFFSET,
    @p_run_id BIGINT,
    @p_report BIT = 1,
    @rows_closed BIGINT = 0 OUTPUT,
    @rows_deleted BIGINT = 0 OUTPUT
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    DECLARE @table NVARCHAR(300) = N'dim.' + QUOTENAME(@p_dimension);
    DECLARE @sk NVARCHAR(300) = QUOTENAME(@p_dimension + N'_sk');
    -- a temporary table (#incoming) has no schema; a staging table has
    DECLARE @present NVARCHAR(300) = CASE WHEN PARSENAME(@p_present, 2) IS NULL
        THEN QUOTENAME(PARSENAME(@p_present, 1))
        ELSE QUOTENAME(PARSENAME(@p_present, 2)) + N'.' + QUOTENAME(PARSENAME(@p_present, 1)) END;
    DECLARE @keys TABLE (column_name SYSNAME NOT NULL, present_name SYSNAME NOT NULL, ordinal INT NOT NULL);
    DECLARE @attributes TABLE (column_name SYSNAME NOT NULL, ordinal INT NOT NULL);

    IF OBJECT_ID(@table) IS NULL
        OR OBJECT_ID(CASE WHEN LEFT(@p_present, 1) = N'#' THEN N'tempdb..' + @p_present ELSE @p_present END) IS NULL
        THROW 50031, N'close_vanished_keys: the dimension or the key set does not exist; pass a dimension of schema dim and the table holding the keys the source still has.', 1;

    -- the two lists pair up by position: OPENJSON numbers an array's elements ([key]), STRING_SPLIT does not
    INSERT INTO @keys (column_name, present_name, ordinal)
    SELECT LTRIM(RTRIM(k.[value])), LTRIM(RTRIM(p.[value])), CAST(k.[key] AS INT)
    FROM OPENJSON(N'["' + REPLACE(@p_key_columns, N',', N'","') + N'"]') AS k
    INNER JOIN OPENJSON(N'["' + REPLACE(@p_present_columns, N',', N'","') + N'"]') AS p ON p.[key] = k.[key];

    INSERT INTO @attributes (column_name, ordinal)
    SELECT c.name, c.column_id
    FROM sys.columns AS c
    WHERE c.object_id = OBJECT_ID(@table)
        AND c.name NOT IN (@p_dimension + N'_sk', N'row_hash', N'valid_from', N'valid_to', N'is_current',
            N'is_inferred', N'run_id')
        AND c.name NOT IN (SELECT k.column_name FROM @keys AS k);

    DECLARE @key_list NVARCHAR(MAX) = (
        SELECT STRING_AGG(QUOTENAME(column_name), N', ') WITHIN GROUP (ORDER BY ordinal) FROM @keys
    );
    DECLARE @key_match NVARCHAR(MAX) = (
        SELECT STRING_AGG(N'p.' + QUOTENAME(present_name) + N' = d.' + QUOTENAME(column_name), N' AND ') FROM @keys
    );
    -- a key as flows/validation.py writes it to ctl.quarantine: its values as text joined by |
    DECLARE @kept_key_text NVARCHAR(MAX) = (
        SELECT STRING_AGG(N'CAST(d.' + QUOTENAME(column_name) + N' AS NVARCHAR(200))', N' + N''|'' + ')
            WITHIN GROUP (ORDER BY ordinal)
        FROM @keys
    );
    DECLARE @gone_keys NVARCHAR(MAX) = (
        SELECT STRING_AGG(N'g.' + QUOTENAME(column_name), N', ') WITHIN GROUP (ORDER BY ordinal) FROM @keys
    );
    DECLARE @columns NVARCHAR(MAX) = (
        SELECT STRING_AGG(QUOTENAME(column_name), N', ') WITHIN GROUP (ORDER BY ordinal) FROM @attributes
    );
    DECLARE @gone_columns NVARCHAR(MAX) = (
        SELECT STRING_AGG(CASE WHEN column_name = N'is_deleted' THEN N'CAST(1 AS BIT)'
            ELSE N'g.' + QUOTENAME(column_name) END, N', ') WITHIN GROUP (ORDER BY ordinal)
        FROM @attributes
    );
    -- the deleted version's hash, as merge_scd2 hashes a row: NULL-safe text of each column, ISO style
    DECLARE @gone_hash NVARCHAR(MAX) = N'CONVERT(CHAR(32), HASHBYTES(''MD5'', CONCAT(N'''', ' + (
        SELECT STRING_AGG(
            CAST(N'ISNULL(CONVERT(NVARCHAR(4000), ' + CASE WHEN column_name = N'is_deleted' THEN N'CAST(1 AS BIT)'
                ELSE N'g.' + QUOTENAME(column_name) END + N', 126), N''~''), N''|''' AS NVARCHAR(MAX)),
            N', '
        ) WITHIN GROUP (ORDER BY ordinal) FROM @attributes
    ) + N')), 2)';
    DECLARE @sql NVARCHAR(MAX);

    SET @sql = N'SELECT d.* INTO #scd_gone FROM ' + @table + N' AS d WHERE d.is_current = 1 AND d.is_deleted = 0 '
        + N'AND d.is_inferred = 0 AND d.' + @sk + N' <> -1 '
        + N'AND NOT EXISTS (SELECT 1 FROM ' + @present + N' AS p WHERE ' + @key_match
        + CASE WHEN @p_present_run_id IS NOT NULL THEN N' AND p.run_id = @present_run_id' ELSE N'' END + N') '
        + CASE WHEN OBJECT_ID(N'tempdb..#pmw_kept_keys') IS NOT NULL
            THEN N'AND NOT EXISTS (SELECT 1 FROM #pmw_kept_keys AS k WHERE k.key_text = ' + @kept_key_text + N') '
            ELSE N'' END
        + N'; '
        -- circuit breaker: a key set suddenly empty or mostly missing must not close the dimension
        + N'DECLARE @gone BIGINT = @@ROWCOUNT, @live BIGINT, @message NVARCHAR(2000); '
        + N'IF @gone > 0 AND @max_delete_share < 1 BEGIN '
        + N'SELECT @live = COUNT_BIG(*) FROM ' + @table + N' WHERE is_current = 1 AND is_deleted = 0 '
        + N'AND is_inferred = 0 AND ' + @sk + N' <> -1; '
        + N'IF (@live >= @min_rows AND @gone > @max_delete_share * @live) OR @gone = @live BEGIN '
        + N'SET @message = CONCAT(N''circuit breaker: ' + @table + N' would close '', @gone, N'' of its '', @live, '
        + N'N'' live rows as deleted at the source, more than the limit of '', @max_delete_share * 100, '
        + N'N'' % (below '', @min_rows, N'' live rows only all of them trip it); nothing was written. Check the '
        + N'source table; if it really lost those rows, rerun with pmw run --force-deletes (flow parameter '
        + N'force_deletes); the limit is PMW_MAX_DELETE_SHARE, applied from PMW_MAX_DELETE_SHARE_MIN_ROWS '
        + N'live rows.''); '
        + N'THROW 50030, @message, 1; END; END; '
        + N'UPDATE d SET valid_to = CASE WHEN @as_of > g.valid_from THEN @as_of '
        + N'ELSE DATEADD(MICROSECOND, 1, g.valid_from) END, is_current = 0 FROM ' + @table + N' AS d '
        + N'INNER JOIN #scd_gone AS g ON d.' + @sk + N' = g.' + @sk + N'; '
        + N'SET @closed = @@ROWCOUNT; '
        + N'INSERT INTO ' + @table + N' (' + @key_list + N', ' + @columns
        + N', row_hash, valid_from, valid_to, is_current, is_inferred, run_id) SELECT ' + @gone_keys + N', '
        + @gone_columns + N', ' + @gone_hash + N', CASE WHEN @as_of > g.valid_from THEN @as_of '
        + N'ELSE DATEADD(MICROSECOND, 1, g.valid_from) END, ''9999-12-31T00:00:00+00:00'', 1, 0, @run_id '
        + N'FROM #scd_gone AS g; '
        + N'SET @deleted = @@ROWCOUNT;';

    EXEC sp_executesql
        @sql,
        N'@as_of DATETIMEOFFSET, @run_id BIGINT, @present_run_id BIGINT, @max_delete_share DECIMAL(9, 6), '
        + N'@min_rows BIGINT, @closed BIGINT OUTPUT, @deleted BIGINT OUTPUT',
        @as_of = @p_as_of,
        @run_id = @p_run_id,
        @present_run_id = @p_present_run_id,
        @max_delete_share = @p_max_delete_share,
        @min_rows = @p_min_rows,
        @closed = @rows_closed OUTPUT,
        @deleted = @rows_deleted OUTPUT;

    SET @rows_closed = ISNULL(@rows_closed, 0);
    SET @rows_deleted = ISNULL(@rows_deleted, 0);
    IF @p_report = 1
        SELECT @rows_closed AS rows_closed, @rows_deleted AS rows_deleted;
END
