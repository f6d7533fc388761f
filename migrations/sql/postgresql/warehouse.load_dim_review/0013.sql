-- warehouse.load_dim_review
-- Purpose:    SCD2 history of service reviews. Full compare (no change column; reviews are
--             hard-deleted, which closes the row and adds a deleted version). actual_issued_at is
--             the source server's local time, converted to UTC with the staged zone.
-- Parameters: p_run_id: rows of stg.reviews staged by this run are loaded; p_as_of: the run's as-of
--             instant. rows_inserted, rows_updated, rows_closed, rows_deleted (INOUT, leave out):
--             counts from warehouse.merge_scd2 for the run log.
-- Reads:      stg.reviews. Writes: dim.review.
CREATE OR REPLACE PROCEDURE warehouse.load_dim_review(
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
    CALL warehouse.prepare_incoming('review');

    INSERT INTO pg_temp.incoming (
        review_id, service_id, cycle_no, planned_date, due_date, status, weight_factor, disciplines,
        deliverables, actual_issued_at, assigned_user_id, is_deleted, change_at, first_seen_from
    )
    SELECT
        review_id, service_id, cycle_no, planned_date, due_date, status, weight_factor, disciplines,
        deliverables, actual_issued_at AT TIME ZONE time_zone, assigned_user_id, FALSE, p_as_of, NULL
    FROM stg.reviews
    WHERE run_id = p_run_id;

    CALL warehouse.merge_scd2(
        'review', ARRAY['review_id'], TRUE, p_as_of, p_run_id, rows_inserted, rows_updated, rows_closed, rows_deleted
    );
END;
$$;
