-- warehouse.merge_scd2
-- Purpose:    apply #incoming (created and filled by the calling load_dim_* procedure: the
--             dimension's business key and tracked columns, plus change_at and first_seen_from) to
--             dim.<@p_dimension> as SCD type 2, set-based, with the same rules as the PostgreSQL
--             version: one incoming row per key (the latest change); a key whose hash of tracked
--             columns differs from its current row gets a new version and the old one is closed where
--             it starts (contiguous); a new key starts at first_seen_from, else change_at, else
--             @p_as_of; inferred members are completed in place; with @p_full_compare, a current key
--             absent from #incoming (not an inferred member) is closed at @p_as_of and followed by a
--             deleted version (warehouse.close_vanished_keys), unless that would close more than
--             SESSION_CONTEXT 'pmw.max_delete_share' of the dimension's live rows (of
--             'pmw.max_delete_share_min_rows' or more, default 20; below that all of them): then it
--             throws 50030 and nothing is written.
--             Unchanged rows are not touched.
-- Parameters: @p_dimension: table in schema dim; @p_key_columns: comma-separated business key;
--             @p_full_compare; @p_as_of; @p_run_id. OUTPUT: @rows_inserted (new keys), @rows_updated (new
--             versions, completed inferred members), @rows_closed, @rows_deleted (deleted versions).
-- Reads:      #incoming, dim.<@p_dimension>. Writes: dim.<@p_dimension>.
CREATE OR ALTER PROCEDURE warehouse.merge_scd2
    @p_dimension SYSNAME,
    @p_key_columns NVARCHAR(1000),
    @p_full_compare BIT,
    @p_as_of DATETIMEOFFSET,
    @p_run_id BIGINT,
    @rows_inserted BIGINT = 0 OUTPUT,
    @rows_updated BIGINT = 0 OUTPUT,
    @rows_closed BIGINT = 0 OUTPUT,
    @rows_deleted BIGINT = 0 OUTPUT
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    DECLARE @table NVARCHAR(300) = N'dim.' + QUOTENAME(@p_dimension);
    DECLARE @sk NVARCHAR(300) = QUOTENAME(@p_dimension + N'_sk');
    DECLARE @keys TABLE (column_name SYSNAME NOT NULL, ordinal INT NOT NULL);
    DECLARE @attributes TABLE (column_name SYSNAME NOT NULL, ordinal INT NOT NULL);
    DECLARE @count BIGINT;
    -- the circuit breaker's limit, set in the session context by the flow (NULL when called by hand: none)
    DECLARE @max_delete_share DECIMAL(9, 6)
        = TRY_CAST(CAST(SESSION_CONTEXT(N'pmw.max_delete_share') AS NVARCHAR(30)) AS DECIMAL(9, 6));
    -- the live rows from which the share applies (below: only losing all of them trips it); default 20
    DECLARE @min_rows BIGINT = ISNULL(
        TRY_CAST(CAST(SESSION_CONTEXT(N'pmw.max_delete_share_min_rows') AS NVARCHAR(30)) AS BIGINT), 20);
    DECLARE @gone_closed BIGINT = 0;

    IF OBJECT_ID(@table) IS NULL OR OBJECT_ID(N'tempdb..#incoming') IS NULL
        THROW 50020, N'merge_scd2: the dimension does not exist or #incoming was not created by the caller.', 1;

    INSERT INTO @keys (column_name, ordinal)
    SELECT LTRIM(RTRIM(value)), ROW_NUMBER() OVER (ORDER BY (SELECT NULL))
    FROM STRING_SPLIT(@p_key_columns, N',');

    INSERT INTO @attributes (column_name, ordinal)
    SELECT c.name, c.column_id
    FROM sys.columns AS c
    WHERE c.object_id = OBJECT_ID(@table)
        AND c.name NOT IN (@p_dimension + N'_sk', N'row_hash', N'valid_from', N'valid_to', N'is_current',
            N'is_inferred', N'run_id')
        AND c.name NOT IN (SELECT column_name FROM @keys);

    DECLARE @key_list NVARCHAR(MAX) = (
        SELECT STRING_AGG(QUOTENAME(column_name), N', ') WITHIN GROUP (ORDER BY ordinal) FROM @keys
    );
    DECLARE @key_match NVARCHAR(MAX) = (
        SELECT STRING_AGG(N'd.' + QUOTENAME(column_name) + N' = i.' + QUOTENAME(column_name), N' AND ') FROM @keys
    );
    DECLARE @columns NVARCHAR(MAX) = (
        SELECT STRING_AGG(QUOTENAME(column_name), N', ') WITHIN GROUP (ORDER BY ordinal) FROM @attributes
    );
    DECLARE @set NVARCHAR(MAX) = (
        SELECT STRING_AGG(QUOTENAME(column_name) + N' = i.' + QUOTENAME(column_name), N', ') FROM @attributes
    );
    -- Hash of tracked columns: NULL-safe text of each column, ISO style for dates and times.
    DECLARE @hash NVARCHAR(MAX) = N'CONVERT(CHAR(32), HASHBYTES(''MD5'', CONCAT(N'''', ' + (
        SELECT STRING_AGG(
            CAST(N'ISNULL(CONVERT(NVARCHAR(4000), i.' + QUOTENAME(column_name) + N', 126), N''~''), N''|''' AS NVARCHAR(MAX)),
            N', '
        ) WITHIN GROUP (ORDER BY ordinal) FROM @attributes
    ) + N')), 2)';
    DECLARE @sql NVARCHAR(MAX);

    -- one row per key, the latest change, hashed as the dimension stores it
    SET @sql = N'SELECT ' + @key_list + N', ' + @columns + N', change_at, first_seen_from, row_hash '
        + N'INTO #scd_in FROM (SELECT i.*, ' + @hash + N' AS row_hash, ROW_NUMBER() OVER (PARTITION BY '
        + @key_list + N' ORDER BY i.change_at DESC) AS change_rank FROM #incoming AS i) AS ranked '
        + N'WHERE change_rank = 1; '
        + N'SELECT i.*, d.' + @sk + N' AS current_sk, d.row_hash AS current_hash, d.valid_from AS current_from, '
        + N'd.is_inferred AS current_inferred INTO #scd_cmp FROM #scd_in AS i LEFT JOIN ' + @table
        + N' AS d ON ' + @key_match + N' AND d.is_current = 1; '
        -- inferred members are completed in place
        + N'UPDATE d SET ' + @set + N', row_hash = i.row_hash, is_inferred = 0, run_id = @p_run_id FROM ' + @table
        + N' AS d INNER JOIN #scd_cmp AS i ON d.' + @sk + N' = i.current_sk WHERE i.current_inferred = 1; '
        + N'SET @updated = @@ROWCOUNT; '
        -- changed keys: close the current version where the new one starts
        + N'UPDATE d SET valid_to = CASE WHEN c.change_at > c.current_from THEN c.change_at '
        + N'ELSE DATEADD(MICROSECOND, 1, c.current_from) END, is_current = 0 FROM ' + @table + N' AS d '
        + N'INNER JOIN #scd_cmp AS c ON d.' + @sk + N' = c.current_sk '
        + N'WHERE c.current_inferred = 0 AND c.current_hash <> c.row_hash; '
        + N'SET @closed = @@ROWCOUNT; SET @updated = @updated + @closed; '
        -- new versions of changed keys, and new keys
        + N'INSERT INTO ' + @table + N' (' + @key_list + N', ' + @columns
        + N', row_hash, valid_from, valid_to, is_current, is_inferred, run_id) SELECT ' + @key_list + N', '
        + @columns + N', row_hash, CASE WHEN current_sk IS NULL THEN COALESCE(first_seen_from, change_at, @p_as_of) '
        + N'WHEN change_at > current_from THEN change_at ELSE DATEADD(MICROSECOND, 1, current_from) END, '
        + N'''9999-12-31T00:00:00+00:00'', 1, 0, @p_run_id FROM #scd_cmp '
        + N'WHERE current_sk IS NULL OR (current_inferred = 0 AND current_hash <> row_hash); '
        + N'SET @inserted = @@ROWCOUNT - @closed;';

    EXEC sp_executesql
        @sql,
        N'@p_as_of DATETIMEOFFSET, @p_run_id BIGINT, @inserted BIGINT OUTPUT, @updated BIGINT OUTPUT, '
        + N'@closed BIGINT OUTPUT',
        @p_as_of = @p_as_of,
        @p_run_id = @p_run_id,
        @inserted = @rows_inserted OUTPUT,
        @updated = @count OUTPUT,
        @closed = @rows_closed OUTPUT;

    SET @rows_deleted = 0;
    IF @p_full_compare = 1
    BEGIN
        -- hard deletes: a current key the full extract no longer has (an inferred member never was in it,
        -- nor is a key quarantined this run); close_vanished_keys also holds the circuit breaker
        EXEC warehouse.close_vanished_keys
            @p_dimension = @p_dimension,
            @p_key_columns = @p_key_columns,
            @p_present = N'#incoming',
            @p_present_columns = @p_key_columns,
            @p_max_delete_share = @max_delete_share,
            @p_min_rows = @min_rows,
            @p_as_of = @p_as_of,
            @p_run_id = @p_run_id,
            @p_report = 0,
            @rows_closed = @gone_closed OUTPUT,
            @rows_deleted = @rows_deleted OUTPUT;
        SET @rows_closed = @rows_closed + @gone_closed;
    END;

    SET @rows_updated = @count;
END
