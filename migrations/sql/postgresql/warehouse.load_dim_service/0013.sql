-- warehouse.load_dim_service
-- Purpose:    SCD2 history of project services. Full compare: status, progress_pct and fees
--             change without updated_at, so every row is compared by hash each run.
-- Parameters: p_run_id: rows of stg.services staged by this run are loaded; p_as_of: the run's as-of
--             instant. rows_inserted, rows_updated, rows_closed, rows_deleted (INOUT, leave out):
--             counts from warehouse.merge_scd2 for the run log.
-- Reads:      stg.services. Writes: dim.service.
CREATE OR REPLACE PROCEDURE warehouse.load_dim_service(
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
    CALL warehouse.prepare_incoming('service');

    INSERT INTO pg_temp.incoming (
        service_id, project_id, phase, service_code, service_name, unit_type, unit_qty, unit_rate, lump_sum_fee,
        agreed_fee, status, progress_pct, claimed_to_date, assigned_user_id, created_at, is_deleted, change_at,
        first_seen_from
    )
    SELECT
        service_id, project_id, phase, service_code, service_name, unit_type, unit_qty, unit_rate, lump_sum_fee,
        agreed_fee, status, progress_pct, claimed_to_date, assigned_user_id, created_at AT TIME ZONE time_zone,
        FALSE, p_as_of, created_at AT TIME ZONE time_zone
    FROM stg.services
    WHERE run_id = p_run_id;

    CALL warehouse.merge_scd2(
        'service', ARRAY['service_id'], TRUE, p_as_of, p_run_id, rows_inserted, rows_updated, rows_closed, rows_deleted
    );
END;
$$;
