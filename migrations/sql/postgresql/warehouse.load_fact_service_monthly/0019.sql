-- warehouse.load_fact_service_monthly
-- Purpose:    the service monthly snapshot: one row per (service, month) holding the service's state at the
--             end of the month in the business time zone, or at the as-of instant for the current month
--             (business-rules.md): earned value = agreed_fee x progress_pct / 100, claimed = claimed_to_date
--             (never the lump sum), variance = earned value - claimed, all DECIMAL(18,2); quantities; and its
--             reviews then: total (not cancelled, not deleted), completed, overdue at that date.
--             Months computed: the first run's month starts the series; later runs compute the months from
--             the earliest month a service, review or project version written after p_since_run_id starts in
--             (late data) and any month since the last one computed, up to the as-of month, which every
--             run recomputes (its state is the one at the as-of: overdue counts move with the date); the
--             last month computed is taken once more after it ends, for its end-of-month state. A month
--             that has ended is otherwise recomputed only when late data for it arrives. Identical rows
--             are left alone.
-- Parameters: p_run_id; p_as_of: the run's as-of instant; p_time_zone: the business time zone (IANA);
--             p_since_run_id, p_since_as_of: the last run whose fact phase committed and its as-of
--             instant (NULL: never), given by the run log.
--             rows_read (rows computed), rows_inserted, rows_updated, rows_deleted (INOUT, leave out).
-- Reads:      dim.service, dim.review, dim.project. Writes: fact.service_monthly.
CREATE OR REPLACE PROCEDURE warehouse.load_fact_service_monthly(
    p_run_id bigint,
    p_as_of timestamptz,
    p_time_zone text,
    p_since_run_id bigint,
    p_since_as_of timestamptz,
    INOUT rows_read bigint DEFAULT 0,
    INOUT rows_inserted bigint DEFAULT 0,
    INOUT rows_updated bigint DEFAULT 0,
    INOUT rows_deleted bigint DEFAULT 0
)
LANGUAGE plpgsql
-- its own search_path: the caller's (dim ahead of pg_catalog, say) cannot change what a name means
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_as_of_month date := date_trunc('month', (p_as_of AT TIME ZONE p_time_zone)::date)::date;
    v_first_month date;
    v_last_month date;
    v_last_run bigint := p_since_run_id;
    v_last_as_of timestamptz := p_since_as_of;
    v_late_month date;
    v_from date;
    v_month date;
    v_at timestamptz;
BEGIN
    SELECT to_date(min(month_date_key)::text, 'YYYYMMDD'), to_date(max(month_date_key)::text, 'YYYYMMDD')
    INTO v_first_month, v_last_month
    FROM fact.service_monthly;

    IF v_first_month IS NULL THEN
        v_from := v_as_of_month;
    ELSE
        SELECT date_trunc('month', min((valid_from AT TIME ZONE p_time_zone)::date))::date INTO v_late_month
        FROM (
            SELECT valid_from FROM dim.service WHERE v_last_run IS NULL OR run_id > v_last_run
            UNION ALL SELECT valid_from FROM dim.review WHERE v_last_run IS NULL OR run_id > v_last_run
            UNION ALL SELECT valid_from FROM dim.project WHERE v_last_run IS NULL OR run_id > v_last_run
        ) AS changed;
        v_from := GREATEST(v_first_month, LEAST((v_last_month + interval '1 month')::date, v_late_month));
        -- the last month computed before it ended gets its end-of-month state once (overdue counts move
        -- with the date, not only with new versions)
        IF v_last_month < v_as_of_month AND (v_last_as_of IS NULL
            OR v_last_as_of < ((v_last_month + interval '1 month')::timestamp AT TIME ZONE p_time_zone)) THEN
            v_from := LEAST(v_from, v_last_month);
        END IF;
        -- the as-of month holds the state at this run's as-of: recomputed every run (overdue counts move
        -- with the as-of date even when no version changed)
        v_from := LEAST(v_from, v_as_of_month);
    END IF;
    IF v_from IS NULL OR v_from > v_as_of_month THEN
        RETURN;  -- nothing happened since the last snapshot of these months
    END IF;

    DROP TABLE IF EXISTS pg_temp.service_month;
    CREATE TEMP TABLE service_month (LIKE fact.service_monthly) ON COMMIT DROP;

    FOR v_month IN SELECT generate_series(v_from, v_as_of_month, interval '1 month')::date LOOP
        -- the last instant of the month, or the as-of instant for the as-of month
        v_at := LEAST(
            ((v_month + interval '1 month')::timestamp AT TIME ZONE p_time_zone) - interval '1 microsecond', p_as_of
        );
        INSERT INTO pg_temp.service_month (
            month_date_key, service_id, service_sk, project_sk, agreed_fee, progress_pct, earned_value, claimed,
            variance, unit_qty, reviews_total, reviews_completed, reviews_overdue, run_id
        )
        WITH reviews AS (
            SELECT
                r.service_id,
                count(*) FILTER (WHERE r.status <> 'cancelled') AS total,
                count(*) FILTER (WHERE r.status IN ('completed', 'report_issued', 'closed')) AS completed,
                count(*) FILTER (
                    WHERE r.status NOT IN ('completed', 'report_issued', 'closed', 'cancelled')
                    AND COALESCE(r.due_date, r.planned_date) < (v_at AT TIME ZONE p_time_zone)::date
                ) AS overdue
            FROM dim.review AS r
            WHERE r.valid_from <= v_at AND r.valid_to > v_at AND NOT r.is_deleted AND r.review_sk <> -1
            GROUP BY r.service_id
        ),

        first_project AS (
            SELECT DISTINCT ON (project_id) project_id, project_sk
            FROM dim.project WHERE project_sk <> -1
            ORDER BY project_id, valid_from
        )

        SELECT
            to_char(v_month, 'YYYYMMDD')::integer,
            s.service_id,
            s.service_sk,
            COALESCE(p.project_sk, fp.project_sk, -1),
            s.agreed_fee,
            s.progress_pct,
            round(s.agreed_fee * s.progress_pct / 100, 2)::numeric(18, 2),
            s.claimed_to_date,
            (round(s.agreed_fee * s.progress_pct / 100, 2) - s.claimed_to_date)::numeric(18, 2),
            s.unit_qty,
            COALESCE(r.total, 0),
            COALESCE(r.completed, 0),
            COALESCE(r.overdue, 0),
            p_run_id
        FROM dim.service AS s
        LEFT JOIN reviews AS r ON r.service_id = s.service_id
        LEFT JOIN dim.project AS p ON p.project_id = s.project_id AND p.valid_from <= v_at AND p.valid_to > v_at
        LEFT JOIN first_project AS fp ON fp.project_id = s.project_id
        WHERE s.valid_from <= v_at AND s.valid_to > v_at AND NOT s.is_deleted AND s.service_sk <> -1;
    END LOOP;

    SELECT count(*) INTO rows_read FROM pg_temp.service_month;

    DELETE FROM fact.service_monthly AS f
    WHERE f.month_date_key BETWEEN to_char(v_from, 'YYYYMMDD')::integer
            AND to_char(v_as_of_month, 'YYYYMMDD')::integer
        AND NOT EXISTS (
            SELECT 1 FROM pg_temp.service_month AS n
            WHERE n.month_date_key = f.month_date_key AND n.service_id = f.service_id
        );
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;

    UPDATE fact.service_monthly AS f
    SET service_sk = n.service_sk, project_sk = n.project_sk, agreed_fee = n.agreed_fee,
        progress_pct = n.progress_pct, earned_value = n.earned_value, claimed = n.claimed, variance = n.variance,
        unit_qty = n.unit_qty, reviews_total = n.reviews_total, reviews_completed = n.reviews_completed,
        reviews_overdue = n.reviews_overdue, run_id = p_run_id
    FROM pg_temp.service_month AS n
    WHERE n.month_date_key = f.month_date_key AND n.service_id = f.service_id
        AND (n.service_sk, n.project_sk, n.agreed_fee, n.progress_pct, n.earned_value, n.claimed, n.variance,
            n.unit_qty, n.reviews_total, n.reviews_completed, n.reviews_overdue)
        IS DISTINCT FROM (f.service_sk, f.project_sk, f.agreed_fee, f.progress_pct, f.earned_value, f.claimed,
            f.variance, f.unit_qty, f.reviews_total, f.reviews_completed, f.reviews_overdue);
    GET DIAGNOSTICS rows_updated = ROW_COUNT;

    INSERT INTO fact.service_monthly
    SELECT * FROM pg_temp.service_month
    ORDER BY month_date_key, service_id
    ON CONFLICT (month_date_key, service_id) DO NOTHING;
    GET DIAGNOSTICS rows_inserted = ROW_COUNT;
    IF rows_inserted > 10000 THEN
        -- a first load: statistics taken while the table was empty would make the next run's joins
        -- against it nested loops over every row
        ANALYZE fact.service_monthly;
    END IF;
END;
$$;
