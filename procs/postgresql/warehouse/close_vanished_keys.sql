-- warehouse.close_vanished_keys
-- Purpose:    close, as deleted at the source, every live current key of dim.<p_dimension> that a
--             set of keys the source still has (p_present) does not hold: the current version is
--             closed at p_as_of and followed by a deleted version (is_deleted, the other tracked
--             values kept), so every key keeps one current row. Used by warehouse.merge_scd2 for a
--             full compare (p_present = pg_temp.incoming) and by the flow's key-set reconciliation
--             of cursor sources (p_present = stg.<source>_keys, the source's whole key set read after
--             the delta). An inferred member is never closed (the source has not delivered it yet),
--             nor a key listed in pg_temp.pmw_kept_keys as 'k1|k2' (quarantined this run: still at
--             the source).
--             Circuit breaker: from p_min_rows live rows up, closing more than p_max_delete_share of
--             them raises; below p_min_rows it raises only when every live row would go (a table
--             that had rows came back empty). A raise writes nothing (the caller's transaction).
--             Set-based: one anti-join of the live current rows with the key set.
-- Parameters: p_dimension: table in schema dim; p_key_columns: its business key, comma-separated;
--             p_present: the relation of keys still at the source; p_present_columns: the same key's
--             columns in p_present, comma-separated, in the same order; p_present_run_id: only its
--             rows with this run_id (NULL: all rows; pg_temp.incoming has no run_id);
--             p_max_delete_share: the breaker's share (NULL or 1: no breaker); p_min_rows: live rows
--             from which the share applies; p_as_of: the run's as-of instant; p_run_id.
--             rows_closed (versions closed), rows_deleted (deleted versions added): INOUT, leave out.
-- Reads:      p_present, dim.<p_dimension>, pg_temp.pmw_kept_keys (when it exists).
-- Writes:     dim.<p_dimension>.
CREATE OR REPLACE PROCEDURE warehouse.close_vanished_keys(
    p_dimension text,
    p_key_columns text,
    p_present text,
    p_present_columns text,
    p_present_run_id bigint,
    p_max_delete_share numeric,
    p_min_rows bigint,
    p_as_of timestamptz,
    p_run_id bigint,
    INOUT rows_closed bigint DEFAULT 0,
    INOUT rows_deleted bigint DEFAULT 0
)
LANGUAGE plpgsql
-- its own search_path: the caller's (dim ahead of pg_catalog, say) cannot change what a name means
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table text := format('dim.%I', p_dimension);
    v_sk text := quote_ident(p_dimension || '_sk');
    v_keys text[] := string_to_array(replace(p_key_columns, ' ', ''), ',');
    v_present_keys text[] := string_to_array(replace(p_present_columns, ' ', ''), ',');
    v_present regclass := to_regclass(p_present);
    v_attributes text[];
    v_key_list text;
    v_key_match text;
    v_columns text;
    v_tombstone_columns text;
    v_tombstone_hash text;
    v_count bigint;
    v_live bigint;
BEGIN
    rows_closed := 0;  -- whatever the caller passed in: these are outputs
    rows_deleted := 0;
    IF to_regclass(v_table) IS NULL OR v_present IS NULL THEN
        RAISE EXCEPTION 'close_vanished_keys: dim.% or the key set % does not exist', p_dimension, p_present
            USING HINT = 'Pass a dimension of schema dim and the table holding the keys the source still has.';
    END IF;
    IF cardinality(v_keys) IS DISTINCT FROM cardinality(v_present_keys) THEN
        RAISE EXCEPTION 'close_vanished_keys: % key columns (%) but % key set columns (%)',
            cardinality(v_keys), p_key_columns, cardinality(v_present_keys), p_present_columns
            USING HINT = 'Name the same business key, column for column, in the dimension and the key set.';
    END IF;

    SELECT array_agg(a.attname::text ORDER BY a.attnum)
    INTO v_attributes
    FROM pg_attribute AS a
    WHERE a.attrelid = to_regclass(v_table)
        AND a.attnum > 0
        AND NOT a.attisdropped
        AND a.attname::text <> ALL (v_keys || ARRAY[p_dimension || '_sk', 'row_hash', 'valid_from',
            'valid_to', 'is_current', 'is_inferred', 'run_id']);

    SELECT
        string_agg(quote_ident(k.name), ', ' ORDER BY k.ordinal),
        string_agg(format('p.%I = d.%I', v_present_keys[k.ordinal], k.name), ' AND ' ORDER BY k.ordinal)
    INTO v_key_list, v_key_match
    FROM unnest(v_keys) WITH ORDINALITY AS k (name, ordinal);
    -- the deleted version: the closed one's values with is_deleted set, hashed as merge_scd2 hashes
    SELECT
        string_agg(quote_ident(a), ', '),
        string_agg(CASE WHEN a = 'is_deleted' THEN 'TRUE' ELSE 'g.' || quote_ident(a) END, ', '),
        format('hash_record_extended(ROW(%s), 0)',
            string_agg(CASE WHEN a = 'is_deleted' THEN 'TRUE' ELSE 'g.' || quote_ident(a) END, ', '))
    INTO v_columns, v_tombstone_columns, v_tombstone_hash
    FROM unnest(v_attributes) AS a;

    DROP TABLE IF EXISTS pg_temp.scd_gone;
    EXECUTE format(
        'CREATE TEMP TABLE scd_gone ON COMMIT DROP AS '
        'SELECT d.* FROM %1$s AS d WHERE d.is_current AND NOT d.is_deleted AND NOT d.is_inferred '
        'AND d.%2$s <> -1 AND NOT EXISTS (SELECT 1 FROM %3$s AS p WHERE %4$s%5$s)%6$s',
        v_table, v_sk, v_present, v_key_match,
        CASE WHEN p_present_run_id IS NOT NULL THEN ' AND p.run_id = $1' ELSE '' END,
        CASE WHEN to_regclass('pg_temp.pmw_kept_keys') IS NOT NULL THEN format(
            ' AND NOT EXISTS (SELECT 1 FROM pg_temp.pmw_kept_keys AS k WHERE k.key_text = concat_ws(''|'', %s))',
            (SELECT string_agg('d.' || quote_ident(k), ', ') FROM unnest(v_keys) AS k)
        ) ELSE '' END
    ) USING p_present_run_id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count = 0 THEN
        RETURN;
    END IF;

    -- circuit breaker: a key set suddenly empty or mostly missing must not close the dimension
    IF p_max_delete_share < 1 THEN
        EXECUTE format(
            'SELECT count(*) FROM %1$s WHERE is_current AND NOT is_deleted AND NOT is_inferred AND %2$s <> -1',
            v_table, v_sk
        ) INTO v_live;
        -- a small dimension may lose a few rows (one of three clients), but not all of them
        IF (v_live >= p_min_rows AND v_count > p_max_delete_share * v_live) OR v_count = v_live THEN
            RAISE EXCEPTION 'circuit breaker: dim.% would close % of its % live rows (% %%) as deleted at the '
                'source, more than the limit of % %%%; nothing was written',
                p_dimension, v_count, v_live, round(100.0 * v_count / v_live, 1), round(100 * p_max_delete_share, 1),
                CASE WHEN v_live < p_min_rows
                    THEN format(' (below %s live rows only all of them trip it)', p_min_rows) ELSE '' END
                USING HINT = 'Check the source table. If it really lost those rows, rerun with '
                    '`pmw run --force-deletes` (flow parameter force_deletes); the limit is PMW_MAX_DELETE_SHARE, '
                    'applied from PMW_MAX_DELETE_SHARE_MIN_ROWS live rows.';
        END IF;
    END IF;

    EXECUTE format(
        'UPDATE %1$s AS d SET valid_to = GREATEST($1, g.valid_from + interval ''1 microsecond''), '
        'is_current = FALSE FROM pg_temp.scd_gone AS g WHERE d.%2$s = g.%2$s',
        v_table, v_sk
    ) USING p_as_of;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    rows_closed := v_count;
    EXECUTE format(
        'INSERT INTO %1$s (%2$s, %3$s, row_hash, valid_from, valid_to, is_current, is_inferred, run_id) '
        'SELECT %4$s, %5$s, %6$s, GREATEST($1, g.valid_from + interval ''1 microsecond''), '
        '''9999-12-31 00:00:00+00'', TRUE, FALSE, $2 FROM pg_temp.scd_gone AS g',
        v_table, v_key_list, v_columns,
        (SELECT string_agg('g.' || quote_ident(k), ', ') FROM unnest(v_keys) AS k),
        v_tombstone_columns, v_tombstone_hash
    ) USING p_as_of, p_run_id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    rows_deleted := v_count;
END;
$$;
