-- warehouse.load_dim_app_user
-- Purpose:    SCD2 history of application users. Full compare (created_at only); a new user's
--             history starts at its created_at (converted to UTC).
-- Parameters: p_run_id: rows of stg.users staged by this run are loaded; p_as_of: the run's as-of
--             instant. rows_inserted, rows_updated, rows_closed, rows_deleted (INOUT, leave out):
--             counts from warehouse.merge_scd2 for the run log.
-- Reads:      stg.users. Writes: dim.app_user.
CREATE OR REPLACE PROCEDURE warehouse.load_dim_app_user(
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
    CALL warehouse.prepare_incoming('app_user');

    INSERT INTO pg_temp.incoming (user_id, name, role, email, created_at, is_deleted, change_at, first_seen_from)
    SELECT
        user_id, name, role, email, created_at AT TIME ZONE time_zone, FALSE, p_as_of,
        created_at AT TIME ZONE time_zone
    FROM stg.users
    WHERE run_id = p_run_id;

    CALL warehouse.merge_scd2(
        'app_user', ARRAY['user_id'], TRUE, p_as_of, p_run_id, rows_inserted, rows_updated, rows_closed, rows_deleted
    );
END;
$$;
