-- warehouse.load_dim_status_map
-- Purpose:    SCD2 history of the raw-to-normalized issue status map. Full compare.
-- Parameters: p_run_id: rows of stg.status_map staged by this run are loaded; p_as_of: the run's as-of
--             instant. rows_inserted, rows_updated, rows_closed, rows_deleted (INOUT, leave out):
--             counts from warehouse.merge_scd2 for the run log.
-- Reads:      stg.status_map. Writes: dim.status_map.
CREATE OR REPLACE PROCEDURE warehouse.load_dim_status_map(
    p_run_id bigint,
    p_as_of timestamptz,
    INOUT rows_inserted bigint DEFAULT 0,
    INOUT rows_updated bigint DEFAULT 0,
    INOUT rows_closed bigint DEFAULT 0,
    INOUT rows_deleted bigint DEFAULT 0
)
LANGUAGE plpgsql
-- its own search_path: the caller's (dim ahead of pg_catalog, say) cannot change what a name means
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CALL warehouse.prepare_incoming('status_map');

    INSERT INTO pg_temp.incoming (
        source_system, raw_status, normalized_status, is_closed, is_deleted, change_at, first_seen_from
    )
    SELECT source_system, raw_status, normalized_status, is_closed, FALSE, p_as_of, NULL
    FROM stg.status_map
    WHERE run_id = p_run_id;

    CALL warehouse.merge_scd2(
        'status_map', ARRAY['source_system', 'raw_status'], TRUE, p_as_of, p_run_id, rows_inserted, rows_updated, rows_closed, rows_deleted
    );
END;
$$;
