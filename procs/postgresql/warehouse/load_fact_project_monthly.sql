-- warehouse.load_fact_project_monthly
-- Purpose:    project KPIs per month, built from the other facts so each number has one rule set: issues
--             total, open, closed and high-priority open, and the mean resolution days of the closed ones,
--             from the month's daily issue snapshot on its last day (the end of the month, or the as-of date
--             for the as-of month: the date itself, not the newest date that has rows, so a month whose
--             issues were all deleted counts 0); reviews total, completed and overdue, services in progress
--             and completed, earned value, claimed and variance from the service monthly snapshot of the
--             same month. One row per month for every project that exists then (its version in effect at
--             the month's end, or at the as-of instant), and one for the unknown project (-1) when issues or
--             services without a PM project are counted, so that a month's totals equal the snapshot's.
--             Months computed: the as-of month (every run), every month whose daily or service
--             snapshot rows were written after p_since_run_id (the last run whose fact phase committed:
--             never "by this run", so a retry after a failure redoes what the failed run's rolled-back
--             writes would have), and every month since the local date of a deleted event written after it
--             (a deletion removes daily rows without writing any); so an ended month changes only when
--             late data changed its snapshots. Runs after warehouse.load_fact_issue_daily,
--             load_fact_issue_event and load_fact_service_monthly.
-- Parameters: p_run_id; p_as_of; p_time_zone: the business time zone (IANA); p_since_run_id: the last run
--             whose fact phase committed (NULL: never), given by the run log.
--             rows_read (rows computed), rows_inserted, rows_updated, rows_deleted (INOUT, leave out).
-- Reads:      fact.issue_daily, fact.service_monthly, fact.issue_event, fact.project_monthly, dim.project,
--             dim.service. Writes: fact.project_monthly.
CREATE OR REPLACE PROCEDURE warehouse.load_fact_project_monthly(
    p_run_id bigint,
    p_as_of timestamptz,
    p_time_zone text,
    p_since_run_id bigint,
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
    v_as_of_date date := (p_as_of AT TIME ZONE p_time_zone)::date;
    v_as_of_month integer := to_char(date_trunc('month', (p_as_of AT TIME ZONE p_time_zone)::date), 'YYYYMMDD')::integer;
BEGIN
    DROP TABLE IF EXISTS pg_temp.kpi_month, pg_temp.kpi_new;
    -- the months to compute, each with the date and instant whose state it holds: its last day's end, or the
    -- as-of date and instant for the as-of month
    CREATE TEMP TABLE kpi_month ON COMMIT DROP AS
    SELECT
        m.month_date_key,
        to_char(LEAST(e.month_end, v_as_of_date), 'YYYYMMDD')::integer AS snapshot_date_key,
        LEAST(((e.month_end + 1)::timestamp AT TIME ZONE p_time_zone) - interval '1 microsecond', p_as_of)
            AS state_at
    FROM (
        SELECT DISTINCT month_date_key FROM (
            -- the as-of month, every run: it holds the state at this as-of, which moves without any
            -- snapshot row being written (a project created, or a service deleted, since the last run
            -- of the same day); identical rows are left alone, so the same as-of twice writes nothing
            SELECT v_as_of_month AS month_date_key
            UNION ALL SELECT snapshot_date_key / 100 * 100 + 1 FROM fact.issue_daily
            WHERE p_since_run_id IS NULL OR run_id > p_since_run_id
            UNION ALL SELECT month_date_key FROM fact.service_monthly
            WHERE p_since_run_id IS NULL OR run_id > p_since_run_id
            -- a late deletion removes daily rows without writing any: every month since the deletion
            UNION ALL SELECT month_date_key FROM fact.project_monthly
            WHERE month_date_key >= (
                SELECT min(event_date_key) / 100 * 100 + 1
                FROM fact.issue_event
                WHERE (p_since_run_id IS NULL OR run_id > p_since_run_id) AND event_type = 'deleted'
                    AND event_date_key <> -1
            )
        ) AS months
        WHERE month_date_key <= v_as_of_month
    ) AS m
    CROSS JOIN LATERAL (
        SELECT (to_date(m.month_date_key::text, 'YYYYMMDD') + interval '1 month' - interval '1 day')::date AS month_end
    ) AS e;

    CREATE TEMP TABLE kpi_new ON COMMIT DROP AS
    WITH issues AS (
        SELECT
            m.month_date_key,
            p.project_id,  -- -1 for issues without a PM project (the unknown member)
            count(*) AS issues_total,
            count(*) FILTER (WHERE f.is_open) AS issues_open,
            count(*) FILTER (WHERE f.is_closed) AS issues_closed,
            count(*) FILTER (WHERE f.is_open AND f.is_high_priority) AS high_priority_open,
            round(avg(f.resolution_days), 1) AS avg_resolution_days
        FROM pg_temp.kpi_month AS m
        JOIN fact.issue_daily AS f ON f.snapshot_date_key = m.snapshot_date_key
        JOIN dim.project AS p ON p.project_sk = f.project_sk
        GROUP BY m.month_date_key, p.project_id
    ),

    services AS (
        SELECT
            m.month_date_key,
            p.project_id,
            sum(m.reviews_total) AS reviews_total,
            sum(m.reviews_completed) AS reviews_completed,
            sum(m.reviews_overdue) AS reviews_overdue,
            count(*) FILTER (WHERE s.status = 'in_progress') AS services_in_progress,
            count(*) FILTER (WHERE s.status = 'completed') AS services_completed,
            sum(m.earned_value) AS earned_value,
            sum(m.claimed) AS claimed,
            sum(m.variance) AS variance
        FROM fact.service_monthly AS m
        JOIN pg_temp.kpi_month AS k ON k.month_date_key = m.month_date_key
        JOIN dim.service AS s ON s.service_sk = m.service_sk
        JOIN dim.project AS p ON p.project_sk = m.project_sk
        GROUP BY m.month_date_key, p.project_id
    ),

    projects AS (  -- every project that exists at the month's state instant has a row, with or without data
        SELECT m.month_date_key, p.project_id
        FROM pg_temp.kpi_month AS m
        JOIN dim.project AS p ON p.valid_from <= m.state_at AND p.valid_to > m.state_at
        WHERE NOT p.is_deleted AND p.project_sk <> -1
    ),

    month_project AS (
        SELECT month_date_key, project_id FROM issues
        UNION SELECT month_date_key, project_id FROM services
        UNION SELECT month_date_key, project_id FROM projects
    )

    SELECT
        k.month_date_key,
        k.project_id,
        COALESCE(i.issues_total, 0)::integer AS issues_total,
        COALESCE(i.issues_open, 0)::integer AS issues_open,
        COALESCE(i.issues_closed, 0)::integer AS issues_closed,
        COALESCE(i.high_priority_open, 0)::integer AS high_priority_open,
        i.avg_resolution_days::numeric(10, 1) AS avg_resolution_days,
        COALESCE(s.reviews_total, 0)::integer AS reviews_total,
        COALESCE(s.reviews_completed, 0)::integer AS reviews_completed,
        COALESCE(s.reviews_overdue, 0)::integer AS reviews_overdue,
        COALESCE(s.services_in_progress, 0)::integer AS services_in_progress,
        COALESCE(s.services_completed, 0)::integer AS services_completed,
        COALESCE(s.earned_value, 0)::numeric(18, 2) AS earned_value,
        COALESCE(s.claimed, 0)::numeric(18, 2) AS claimed,
        COALESCE(s.variance, 0)::numeric(18, 2) AS variance
    FROM month_project AS k
    LEFT JOIN issues AS i ON i.month_date_key = k.month_date_key AND i.project_id = k.project_id
    LEFT JOIN services AS s ON s.month_date_key = k.month_date_key AND s.project_id = k.project_id;
    SELECT count(*) INTO rows_read FROM pg_temp.kpi_new;

    DELETE FROM fact.project_monthly AS f
    USING pg_temp.kpi_month AS m
    WHERE f.month_date_key = m.month_date_key
        AND NOT EXISTS (
            SELECT 1 FROM pg_temp.kpi_new AS n
            WHERE n.month_date_key = f.month_date_key AND n.project_id = f.project_id
        );
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;

    UPDATE fact.project_monthly AS f
    SET issues_total = n.issues_total, issues_open = n.issues_open, issues_closed = n.issues_closed,
        high_priority_open = n.high_priority_open, avg_resolution_days = n.avg_resolution_days,
        reviews_total = n.reviews_total, reviews_completed = n.reviews_completed,
        reviews_overdue = n.reviews_overdue, services_in_progress = n.services_in_progress,
        services_completed = n.services_completed, earned_value = n.earned_value, claimed = n.claimed,
        variance = n.variance, run_id = p_run_id
    FROM pg_temp.kpi_new AS n
    WHERE n.month_date_key = f.month_date_key AND n.project_id = f.project_id
        AND (n.issues_total, n.issues_open, n.issues_closed, n.high_priority_open, n.avg_resolution_days,
            n.reviews_total, n.reviews_completed, n.reviews_overdue, n.services_in_progress, n.services_completed,
            n.earned_value, n.claimed, n.variance)
        IS DISTINCT FROM (f.issues_total, f.issues_open, f.issues_closed, f.high_priority_open,
            f.avg_resolution_days, f.reviews_total, f.reviews_completed, f.reviews_overdue, f.services_in_progress,
            f.services_completed, f.earned_value, f.claimed, f.variance);
    GET DIAGNOSTICS rows_updated = ROW_COUNT;

    INSERT INTO fact.project_monthly (
        month_date_key, project_id, issues_total, issues_open, issues_closed, high_priority_open,
        avg_resolution_days, reviews_total, reviews_completed, reviews_overdue, services_in_progress,
        services_completed, earned_value, claimed, variance, run_id
    )
    SELECT
        month_date_key, project_id, issues_total, issues_open, issues_closed, high_priority_open,
        avg_resolution_days, reviews_total, reviews_completed, reviews_overdue, services_in_progress,
        services_completed, earned_value, claimed, variance, p_run_id
    FROM pg_temp.kpi_new
    ORDER BY month_date_key, project_id
    ON CONFLICT (month_date_key, project_id) DO NOTHING;
    GET DIAGNOSTICS rows_inserted = ROW_COUNT;
    IF rows_inserted > 10000 THEN
        -- a first load: statistics taken while the table was empty would make the next run's joins
        -- against it nested loops over every row
        ANALYZE fact.project_monthly;
    END IF;
END;
$$;
