-- warehouse.prepare_incoming
-- Purpose:    create the session's empty pg_temp.incoming for one dimension: its business key and
--             tracked columns with the dimension's own types (so row hashes compare exactly), plus
--             change_at (when this version became true at the source) and first_seen_from (the
--             validity start to use if the key is new). A load_dim_* procedure fills it, then calls
--             warehouse.merge_scd2.
-- Parameters: p_dimension: table name in schema dim.
-- Reads:      the dimension's catalog entry. Writes: pg_temp.incoming (dropped at commit).
CREATE OR REPLACE PROCEDURE warehouse.prepare_incoming(p_dimension text)
LANGUAGE plpgsql
-- its own search_path: the caller's (dim ahead of pg_catalog, say) cannot change what a name means
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_columns text;
BEGIN
    -- pg_catalog, not information_schema: the views cost milliseconds per call on every run
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
    INTO v_columns
    FROM pg_attribute AS a
    WHERE a.attrelid = to_regclass(format('dim.%I', p_dimension))
        AND a.attnum > 0
        AND NOT a.attisdropped
        AND a.attname::text NOT IN (p_dimension || '_sk', 'row_hash', 'valid_from', 'valid_to', 'is_current',
            'is_inferred', 'run_id');
    IF v_columns IS NULL THEN
        RAISE EXCEPTION 'prepare_incoming: dim.% does not exist', p_dimension
            USING HINT = 'Pass the name of a table in schema dim, such as issue or project.';
    END IF;
    DROP TABLE IF EXISTS pg_temp.incoming;
    EXECUTE format(
        'CREATE TEMP TABLE incoming ON COMMIT DROP AS SELECT %s, NULL::timestamptz AS change_at, '
        'NULL::timestamptz AS first_seen_from FROM dim.%I WITH NO DATA',
        v_columns, p_dimension
    );
END;
$$;
