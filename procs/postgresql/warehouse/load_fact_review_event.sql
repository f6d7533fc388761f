-- warehouse.load_fact_review_event
-- Purpose:    review events from dim.review history. ServiceReviews has no change column, so an event is
--             timed when the warehouse first saw the change (the version's valid_from: the detecting run's
--             as-of), except issued, which the source times (actual_issued_at):
--             planned (the review's first version), status_change (the status differs from the previous
--             version), completed (status enters completed / report_issued / closed), cancelled, reopened
--             (a completed review is no longer completed nor cancelled), rescheduled (its target date
--             COALESCE(due_date, planned_date) moves; from/to hold the dates), issued (actual_issued_at is set
--             or moves), deleted (hard-deleted at the source). Dates and instants in from/to are written
--             as ISO 8601 text (UTC for instants), whatever the session's DateStyle or TimeZone.
--             A first version already completed, cancelled or issued gives that event too.
--             Incremental: the events of every review with a version written after p_since_run_id are
--             derived again from its whole history and replace the stored ones; other reviews are untouched.
-- Parameters: p_run_id; p_as_of (unused: events carry their own times; kept for the common signature);
--             p_time_zone: the business time zone (IANA), for event_date_key; p_since_run_id: the last run
--             whose fact phase committed (NULL: never), given by the run log.
--             rows_read (events derived), rows_inserted, rows_deleted (INOUT, leave out): for the run log.
-- Reads:      dim.review, dim.date. Writes: fact.review_event.
CREATE OR REPLACE PROCEDURE warehouse.load_fact_review_event(
    p_run_id bigint,
    p_as_of timestamptz,
    p_time_zone text,
    p_since_run_id bigint,
    INOUT rows_read bigint DEFAULT 0,
    INOUT rows_inserted bigint DEFAULT 0,
    INOUT rows_deleted bigint DEFAULT 0
)
LANGUAGE plpgsql
-- its own search_path: the caller's (dim ahead of pg_catalog, say) cannot change what a name means
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_last_run bigint := p_since_run_id;
BEGIN
    DROP TABLE IF EXISTS pg_temp.review_event_key, pg_temp.review_event_new;
    CREATE TEMP TABLE review_event_key ON COMMIT DROP AS
    SELECT DISTINCT review_id
    FROM dim.review
    WHERE review_sk <> -1 AND (v_last_run IS NULL OR run_id > v_last_run);
    ANALYZE pg_temp.review_event_key;

    CREATE TEMP TABLE review_event_new ON COMMIT DROP AS
    WITH states AS (
        SELECT
            r.review_id,
            r.review_sk,
            r.valid_from,
            r.status,
            r.is_deleted,
            r.actual_issued_at,
            COALESCE(r.due_date, r.planned_date) AS target_date,
            COALESCE(r.status IN ('completed', 'report_issued', 'closed'), FALSE) AS is_completed,
            COALESCE(r.status = 'cancelled', FALSE) AS is_cancelled
        FROM pg_temp.review_event_key AS k
        JOIN dim.review AS r ON r.review_id = k.review_id
    ),

    versions AS (
        SELECT
            s.*,
            row_number() OVER w AS version_no,
            lag(s.status) OVER w AS previous_status,
            lag(s.is_completed) OVER w AS previous_completed,
            lag(s.is_cancelled) OVER w AS previous_cancelled,
            lag(s.is_deleted) OVER w AS previous_deleted,
            lag(s.actual_issued_at) OVER w AS previous_issued_at,
            lag(s.target_date) OVER w AS previous_target_date
        FROM states AS s
        WINDOW w AS (PARTITION BY s.review_id ORDER BY s.valid_from)
    ),

    events AS (
        SELECT review_id, review_sk, 'planned' AS event_type, valid_from AS event_at,
            NULL::text AS from_value, to_char(target_date, 'YYYY-MM-DD') AS to_value
        FROM versions WHERE version_no = 1
        UNION ALL
        SELECT review_id, review_sk, 'status_change', valid_from, previous_status, status
        FROM versions WHERE version_no > 1 AND status IS DISTINCT FROM previous_status
        UNION ALL
        SELECT review_id, review_sk, 'completed', COALESCE(actual_issued_at, valid_from), previous_status, status
        FROM versions
        WHERE is_completed AND NOT is_deleted AND (version_no = 1 OR NOT previous_completed)
        UNION ALL
        SELECT review_id, review_sk, 'cancelled', valid_from, previous_status, status
        FROM versions WHERE is_cancelled AND NOT is_deleted AND (version_no = 1 OR NOT previous_cancelled)
        UNION ALL
        SELECT review_id, review_sk, 'reopened', valid_from, previous_status, status
        FROM versions
        WHERE version_no > 1 AND previous_completed AND NOT is_completed AND NOT is_cancelled AND NOT is_deleted
        UNION ALL
        SELECT review_id, review_sk, 'rescheduled', valid_from, to_char(previous_target_date, 'YYYY-MM-DD'),
            to_char(target_date, 'YYYY-MM-DD')
        FROM versions WHERE version_no > 1 AND target_date IS DISTINCT FROM previous_target_date
        UNION ALL
        SELECT review_id, review_sk, 'issued', actual_issued_at,
            to_char(previous_issued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            to_char(actual_issued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
        FROM versions
        WHERE actual_issued_at IS NOT NULL AND NOT is_deleted
            AND (version_no = 1 OR actual_issued_at IS DISTINCT FROM previous_issued_at)
        UNION ALL
        SELECT review_id, review_sk, 'deleted', valid_from, previous_status, status
        FROM versions WHERE version_no > 1 AND is_deleted AND NOT previous_deleted
    )

    -- a value that comes back (issued at A, then B, then A again) keeps its first event
    SELECT DISTINCT ON (ev.review_id, ev.event_type, ev.event_at)
        ev.review_id,
        ev.event_type::varchar(20) AS event_type,
        ev.event_at,
        COALESCE(d.date_key, -1) AS event_date_key,
        ev.review_sk,
        ev.from_value::varchar(50) AS from_value,
        ev.to_value::varchar(50) AS to_value
    FROM events AS ev
    LEFT JOIN dim.date AS d ON d.full_date = (ev.event_at AT TIME ZONE p_time_zone)::date
    ORDER BY ev.review_id, ev.event_type, ev.event_at, ev.review_sk;

    SELECT count(*) INTO rows_read FROM pg_temp.review_event_new;

    -- replace the derived reviews' events, leaving identical ones alone
    DELETE FROM fact.review_event AS f
    USING pg_temp.review_event_key AS k
    WHERE f.review_id = k.review_id
        AND NOT EXISTS (
            SELECT 1 FROM pg_temp.review_event_new AS n
            WHERE n.review_id = f.review_id AND n.event_type = f.event_type AND n.event_at = f.event_at
                AND n.event_date_key = f.event_date_key AND n.review_sk = f.review_sk
                AND n.from_value IS NOT DISTINCT FROM f.from_value AND n.to_value IS NOT DISTINCT FROM f.to_value
        );
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;

    INSERT INTO fact.review_event (
        review_id, event_type, event_at, event_date_key, review_sk, from_value, to_value, run_id
    )
    SELECT review_id, event_type, event_at, event_date_key, review_sk, from_value, to_value, p_run_id
    FROM pg_temp.review_event_new
    ORDER BY review_id, event_at
    ON CONFLICT (review_id, event_type, event_at) DO NOTHING;
    GET DIAGNOSTICS rows_inserted = ROW_COUNT;
    IF rows_inserted > 10000 THEN
        ANALYZE fact.review_event;  -- a first load: statistics from an empty table mislead the next run
    END IF;
END;
$$;
