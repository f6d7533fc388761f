-- warehouse.merge_scd2
-- Purpose:    apply pg_temp.incoming (see warehouse.prepare_incoming) to dim.<p_dimension> as SCD
--             type 2, set-based:
--             * one incoming row per business key is kept: the latest change_at;
--             * a key whose hash of tracked columns (is_deleted included) differs from its current
--               row gets a new version; the old one is closed at the new one's valid_from, so
--               versions are contiguous (valid_from = change_at, nudged past the previous start when
--               a change arrives out of order);
--             * a new key starts at first_seen_from (else change_at, else p_as_of);
--             * an inferred member (warehouse.add_inferred_members: referred to before it arrived) is
--               completed in place, not versioned;
--             * with p_full_compare, a current key absent from incoming (a hard delete; not an inferred
--               member, which the source has not delivered yet) is closed at p_as_of and followed by a
--               deleted version, so every key keeps one current row. Circuit breaker: when that would
--               close more than the transaction's pmw.max_delete_share of a dimension's live rows (of
--               ten or more, or all of them: an empty extract), it raises instead and the caller's
--               transaction writes nothing.
--             Unchanged rows are not touched: a re-read of the same data writes nothing.
--             The row hash is a 64-bit hash of the tracked columns' values (hash_record_extended):
--             no text formatting, so no session setting (TimeZone, DateStyle) can change it.
--             Speed: an empty dimension is filled in one INSERT; the de-duplicating sort runs only
--             when a key repeats; a small delta against a large dimension probes the current-row
--             index per key instead of scanning the dimension; only changed rows are materialised.
-- Parameters: p_dimension: table in schema dim; p_key_columns: its business key; p_full_compare:
--             incoming holds the whole source; p_as_of: the run's as-of instant; p_run_id.
--             rows_inserted (new keys), rows_updated (new versions of changed keys, completed
--             inferred members), rows_closed (versions closed), rows_deleted (deleted versions).
-- Reads:      pg_temp.incoming, dim.<p_dimension>, the settings pmw.max_delete_share and
--             pmw.max_delete_share_min_rows. Writes: dim.<p_dimension>.
CREATE OR REPLACE PROCEDURE warehouse.merge_scd2(
    p_dimension text,
    p_key_columns text[],
    p_full_compare boolean,
    p_as_of timestamptz,
    p_run_id bigint,
    INOUT rows_inserted bigint DEFAULT 0,
    INOUT rows_updated bigint DEFAULT 0,
    INOUT rows_closed bigint DEFAULT 0,
    INOUT rows_deleted bigint DEFAULT 0
)
LANGUAGE plpgsql
-- its own search_path: the caller's (dim ahead of pg_catalog, say) cannot change what a name means
SET search_path = pg_catalog, pg_temp
-- room for the de-duplicating sort and for rebuilding indexes after a first load
SET work_mem = '64MB'
SET maintenance_work_mem = '512MB'
-- the ANALYZE after a first load only needs the table's size and rough distributions
SET default_statistics_target = 10
AS $$
DECLARE
    v_table text := format('dim.%I', p_dimension);
    v_sk text := quote_ident(p_dimension || '_sk');
    v_source text := 'pg_temp.incoming';
    v_attributes text[];
    v_keys text;
    v_key_match text;
    v_columns text;
    v_hash text;
    v_set text;
    v_incoming_rows bigint;
    v_dimension_rows real;
    v_current_join text;
    v_count bigint;
    v_flag boolean;
    v_index_definitions text[];
    v_index_names text[];
    v_position integer;
    -- the circuit breaker's limit, set for the transaction by the flow (NULL when called by hand: none)
    v_max_delete_share numeric := NULLIF(current_setting('pmw.max_delete_share', true), '')::numeric;
    -- the live rows from which the share applies (below: only losing all of them trips it); default 20
    v_min_rows bigint := COALESCE(NULLIF(current_setting('pmw.max_delete_share_min_rows', true), '')::bigint, 20);
    v_gone_closed bigint := 0;
    v_gone_deleted bigint := 0;
BEGIN
    SELECT array_agg(a.attname::text ORDER BY a.attnum)
    INTO v_attributes
    FROM pg_attribute AS a
    WHERE a.attrelid = to_regclass(v_table)
        AND a.attnum > 0
        AND NOT a.attisdropped
        AND a.attname::text <> ALL (p_key_columns || ARRAY[p_dimension || '_sk', 'row_hash', 'valid_from',
            'valid_to', 'is_current', 'is_inferred', 'run_id']);
    IF v_attributes IS NULL OR NOT 'is_deleted' = ANY (v_attributes) THEN
        RAISE EXCEPTION 'merge_scd2: dim.% is not an SCD2 dimension', p_dimension
            USING HINT = 'Dimensions need is_deleted, row_hash, valid_from, valid_to, is_current, is_inferred.';
    END IF;

    SELECT string_agg(quote_ident(k), ', '), string_agg(format('d.%1$I = i.%1$I', k), ' AND ')
    INTO v_keys, v_key_match
    FROM unnest(p_key_columns) AS k;
    SELECT
        string_agg(quote_ident(a), ', '),
        format('hash_record_extended(ROW(%s), 0)', string_agg('i.' || quote_ident(a), ', ')),
        string_agg(format('%1$I = i.%1$I', a), ', ')
    INTO v_columns, v_hash, v_set
    FROM unnest(v_attributes) AS a;

    DROP TABLE IF EXISTS pg_temp.scd_in, pg_temp.scd_cmp;
    SELECT count(*) INTO v_incoming_rows FROM pg_temp.incoming;  -- cheaper than ANALYZE on every call

    -- an empty dimension (only its unknown member): every key is new, one INSERT. A repeated key
    -- trips the current-row unique index when it is rebuilt; then the rows are de-duplicated first.
    EXECUTE format('SELECT NOT EXISTS (SELECT 1 FROM %s WHERE %s <> -1)', v_table, v_sk) INTO STRICT v_flag;
    IF v_flag THEN
        -- Building the secondary indexes once after the insert is about twice as fast as
        -- maintaining them row by row; the table is locked for this transaction either way.
        SELECT array_agg(pg_get_indexdef(i.indexrelid)), array_agg(format('%I.%I', n.nspname, c.relname))
        INTO v_index_definitions, v_index_names
        FROM pg_index AS i
        JOIN pg_class AS c ON c.oid = i.indexrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE i.indrelid = to_regclass(v_table) AND NOT i.indisprimary;
        BEGIN
            IF v_index_names IS NOT NULL THEN
                EXECUTE 'DROP INDEX ' || array_to_string(v_index_names, ', ');
            END IF;
            EXECUTE format(
                'INSERT INTO %1$s (%2$s, %3$s, row_hash, valid_from, valid_to, is_current, is_inferred, run_id) '
                'SELECT %2$s, %3$s, %4$s, COALESCE(i.first_seen_from, i.change_at, $1), '
                '''9999-12-31 00:00:00+00'', TRUE, FALSE, $2 FROM pg_temp.incoming AS i',
                v_table, v_keys, v_columns, v_hash
            ) USING p_as_of, p_run_id;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            -- rebuilding the current-row unique index fails on a repeated key: de-duplicate below
            IF v_index_definitions IS NOT NULL THEN
                FOR v_position IN 1 .. cardinality(v_index_definitions) LOOP
                    EXECUTE v_index_definitions[v_position];
                END LOOP;
            END IF;
            rows_inserted := v_count;
            EXECUTE format('ANALYZE %s', v_table);  -- a first load: give the planner the new size
            RETURN;
        EXCEPTION WHEN unique_violation THEN
            NULL;  -- the subtransaction is rolled back (indexes included); take the path below
        END;
    END IF;

    -- one row per key, the latest change; the sort runs only when some key repeats
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM pg_temp.incoming GROUP BY %s HAVING count(*) > 1)', v_keys)
    INTO STRICT v_flag;
    IF v_flag THEN
        EXECUTE format(
            'CREATE TEMP TABLE scd_in ON COMMIT DROP AS SELECT DISTINCT ON (%1$s) * FROM pg_temp.incoming '
            'ORDER BY %1$s, change_at DESC NULLS LAST',
            v_keys
        );
        v_source := 'pg_temp.scd_in';
    END IF;

    -- a small delta probes the current-row index key by key; a large one joins
    SELECT reltuples INTO v_dimension_rows FROM pg_class WHERE oid = to_regclass(v_table);
    IF v_dimension_rows < 0 THEN  -- never analysed yet
        EXECUTE format('ANALYZE %s', v_table);
        SELECT reltuples INTO v_dimension_rows FROM pg_class WHERE oid = to_regclass(v_table);
    END IF;
    IF v_incoming_rows * 20 < v_dimension_rows THEN
        v_current_join := format(
            'LEFT JOIN LATERAL (SELECT d.%1$s, d.row_hash, d.valid_from, d.is_inferred FROM %2$s AS d '
            'WHERE %3$s AND d.is_current LIMIT 1) AS d ON TRUE',
            v_sk, v_table, v_key_match
        );
    ELSE
        v_current_join := format('LEFT JOIN %1$s AS d ON %2$s AND d.is_current', v_table, v_key_match);
    END IF;

    -- only new, changed and inferred keys are kept
    EXECUTE format(
        'CREATE TEMP TABLE scd_cmp ON COMMIT DROP AS '
        'SELECT * FROM (SELECT i.*, %1$s AS row_hash, d.%2$s AS current_sk, d.row_hash AS current_hash, '
        'd.valid_from AS current_from, d.is_inferred AS current_inferred FROM %3$s AS i %4$s) AS c '
        'WHERE current_sk IS NULL OR current_inferred OR current_hash <> row_hash',
        v_hash, v_sk, v_source, v_current_join
    );
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        -- inferred members are completed in place
        EXECUTE format(
            'UPDATE %1$s AS d SET %2$s, row_hash = i.row_hash, is_inferred = FALSE, run_id = $1 '
            'FROM pg_temp.scd_cmp AS i WHERE d.%3$s = i.current_sk AND i.current_inferred',
            v_table, v_set, v_sk
        ) USING p_run_id;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        rows_updated := v_count;

        -- changed keys: close the current version where the new one starts
        EXECUTE format(
            'UPDATE %1$s AS d SET valid_to = GREATEST(c.change_at, c.current_from + interval ''1 microsecond''), '
            'is_current = FALSE '
            'FROM pg_temp.scd_cmp AS c '
            'WHERE d.%2$s = c.current_sk AND NOT c.current_inferred',
            v_table, v_sk
        );
        GET DIAGNOSTICS v_count = ROW_COUNT;
        rows_closed := v_count;
        rows_updated := rows_updated + v_count;

        -- new versions of changed keys, and new keys
        EXECUTE format(
            'INSERT INTO %1$s (%2$s, %3$s, row_hash, valid_from, valid_to, is_current, is_inferred, run_id) '
            'SELECT %2$s, %3$s, row_hash, '
            'CASE WHEN current_sk IS NULL THEN COALESCE(first_seen_from, change_at, $1) '
            'ELSE GREATEST(change_at, current_from + interval ''1 microsecond'') END, '
            '''9999-12-31 00:00:00+00'', TRUE, FALSE, $2 '
            'FROM pg_temp.scd_cmp WHERE current_sk IS NULL OR NOT current_inferred',
            v_table, v_keys, v_columns
        ) USING p_as_of, p_run_id;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        rows_inserted := v_count - rows_closed;
    END IF;

    IF p_full_compare THEN
        -- hard deletes: a current key the full extract no longer has (warehouse.close_vanished_keys, which
        -- also keeps inferred members and keys quarantined this run, and holds the circuit breaker)
        CALL warehouse.close_vanished_keys(
            p_dimension, array_to_string(p_key_columns, ','), 'pg_temp.incoming', array_to_string(p_key_columns, ','),
            NULL, v_max_delete_share, v_min_rows, p_as_of, p_run_id, v_gone_closed, v_gone_deleted
        );
        rows_closed := rows_closed + v_gone_closed;
        rows_deleted := v_gone_deleted;
    END IF;
END;
$$;
