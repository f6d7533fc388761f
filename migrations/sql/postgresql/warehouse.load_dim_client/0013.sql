-- warehouse.load_dim_client
-- Purpose:    SCD2 history of clients. Full compare (the source has no change column): a
--             changed client gets a new version from p_as_of; a client gone from the source is
--             closed and flagged deleted.
-- Parameters: p_run_id: rows of stg.clients staged by this run are loaded; p_as_of: the run's as-of
--             instant. rows_inserted, rows_updated, rows_closed, rows_deleted (INOUT, leave out):
--             counts from warehouse.merge_scd2 for the run log.
-- Reads:      stg.clients. Writes: dim.client.
CREATE OR REPLACE PROCEDURE warehouse.load_dim_client(
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
    CALL warehouse.prepare_incoming('client');

    INSERT INTO pg_temp.incoming (
        client_id, client_name, contact_name, contact_email, contact_phone, address, city, state, postcode,
        country, is_deleted, change_at, first_seen_from
    )
    SELECT
        client_id, client_name, contact_name, contact_email, contact_phone, address, city, state, postcode,
        country, FALSE, p_as_of, NULL
    FROM stg.clients
    WHERE run_id = p_run_id;

    CALL warehouse.merge_scd2(
        'client', ARRAY['client_id'], TRUE, p_as_of, p_run_id, rows_inserted, rows_updated, rows_closed, rows_deleted
    );
END;
$$;
