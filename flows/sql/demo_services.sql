-- Services and their reviews for every project that has none yet (new projects), scheduled across
-- the project's life and progressed up to window_end. The review trigger sets progress_pct of
-- review-based services; claimed_to_date is then set to lag or lead the earned value.

DROP TABLE IF EXISTS pg_temp.new_service;
CREATE TEMP TABLE new_service ON COMMIT DROP AS
WITH projects_without_services AS (
    SELECT pr.project_id, pr.start_date, pr.end_date, pr.agreed_fee, pr.created_at
    FROM dbo.projects AS pr
    WHERE NOT EXISTS (SELECT 1 FROM dbo."ProjectServices" AS s WHERE s.project_id = pr.project_id)
),

slots AS (
    SELECT
        pws.*,
        g.k,
        3 + floor(pg_temp.rnd(pws.project_id, 30) * 6)::integer AS service_count
    FROM projects_without_services AS pws
    CROSS JOIN generate_series(1, 8) AS g (k)
),

chosen AS (
    SELECT
        s.*,
        (SELECT COALESCE(max(service_id), 0) FROM dbo."ProjectServices")
            + row_number() OVER (ORDER BY s.project_id, s.k) AS service_id
    FROM slots AS s
    WHERE s.k <= s.service_count
)

SELECT
    c.service_id,
    c.project_id,
    c.k,
    (ARRAY['Concept', 'Schematic Design', 'Design Development', 'Design Development',
        'Construction Documentation', 'Construction Documentation', 'Construction', 'Construction'])[c.k]
        AS phase,
    pg_temp.pick(ARRAY['review', 'review', 'review', 'audit', 'lump_sum', 'lump_sum', 'license'], c.service_id, 31)
        AS unit_type,
    c.start_date + ((c.end_date - c.start_date) * (c.k - 1) / c.service_count) AS service_start,
    c.start_date + ((c.end_date - c.start_date) * c.k / c.service_count) AS service_end,
    c.agreed_fee AS project_fee,
    c.created_at + (c.k * interval '1 day') AS created_at
FROM chosen AS c;

INSERT INTO dbo."ProjectServices" (
    service_id, project_id, phase, service_code, service_name, unit_type, unit_qty, unit_rate, lump_sum_fee,
    agreed_fee, status, progress_pct, claimed_to_date, assigned_user_id, created_at, updated_at
)
SELECT
    ns.service_id,
    ns.project_id,
    ns.phase,
    'SV-' || lpad(ns.k::text, 2, '0'),
    CASE ns.unit_type
        WHEN 'review' THEN ns.phase || ' design review'
        WHEN 'audit' THEN ns.phase || ' compliance audit'
        WHEN 'lump_sum' THEN ns.phase || ' documentation'
        ELSE 'BIM software licences'
    END,
    ns.unit_type,
    fee.unit_qty,
    fee.unit_rate,
    fee.lump_sum_fee,
    COALESCE(fee.lump_sum_fee, fee.unit_qty * fee.unit_rate),
    CASE
        WHEN pg_temp.rnd(ns.service_id, 32) < 0.03 THEN 'cancelled'
        WHEN ns.service_start > p.window_end::date THEN 'planned'
        WHEN ns.service_end < p.window_end::date THEN 'completed'
        WHEN pg_temp.rnd(ns.service_id, 33) < 0.06 THEN 'on_hold'
        ELSE 'in_progress'
    END,
    CASE
        WHEN ns.unit_type IN ('review', 'audit') THEN 0  -- set by the review trigger
        WHEN ns.service_start > p.window_end::date THEN 0
        WHEN ns.service_end < p.window_end::date THEN 100
        ELSE round(100.0 * (p.window_end::date - ns.service_start) / GREATEST(ns.service_end - ns.service_start, 1), 2)
    END,
    0,
    1 + floor(pg_temp.rnd(ns.service_id, 34) * (SELECT count(*) FROM dbo.users))::integer,
    ns.created_at,
    ns.created_at  -- and never again: the application does not maintain it
FROM new_service AS ns
CROSS JOIN params AS p
CROSS JOIN LATERAL (
    SELECT
        CASE ns.unit_type
            WHEN 'review' THEN 2 + floor(pg_temp.rnd(ns.service_id, 35) * 7)
            WHEN 'audit' THEN 1 + floor(pg_temp.rnd(ns.service_id, 35) * 4)
            WHEN 'license' THEN 1 + floor(pg_temp.rnd(ns.service_id, 35) * 20)
            ELSE 1
        END::numeric(10, 2) AS unit_qty,
        CASE WHEN ns.unit_type <> 'lump_sum'
            THEN round((500 + pg_temp.rnd(ns.service_id, 36) * 11500)::numeric, -1) END AS unit_rate,
        CASE WHEN ns.unit_type = 'lump_sum'
            THEN round(ns.project_fee * (0.03 + pg_temp.rnd(ns.service_id, 37) * 0.12)::numeric, -2) END
            AS lump_sum_fee
) AS fee;

-- One review per unit of review and audit services, spread over the service's window.
INSERT INTO dbo."ServiceReviews" (
    review_id, service_id, cycle_no, planned_date, due_date, status, weight_factor, disciplines,
    deliverables, actual_issued_at, assigned_user_id
)
WITH cycles AS (
    SELECT
        s.service_id,
        s.status AS service_status,
        s.unit_qty::integer AS cycle_count,
        g.cycle_no,
        ns.service_start + ((ns.service_end - ns.service_start) * g.cycle_no / s.unit_qty::integer) AS planned_date,
        (SELECT COALESCE(max(review_id), 0) FROM dbo."ServiceReviews")
            + row_number() OVER (ORDER BY s.service_id, g.cycle_no) AS review_id
    FROM new_service AS ns
    INNER JOIN dbo."ProjectServices" AS s ON s.service_id = ns.service_id
    CROSS JOIN LATERAL generate_series(1, s.unit_qty::integer) AS g (cycle_no)
    WHERE s.unit_type IN ('review', 'audit')
),

outcome AS (
    SELECT
        c.*,
        pg_temp.rnd(c.review_id, 40) AS fate,
        -- actual issue: a few days early to two weeks late, during local office hours
        c.planned_date + floor(pg_temp.rnd(c.review_id, 41) * 17)::integer - 3
            + make_interval(hours => 9 + floor(pg_temp.rnd(c.review_id, 42) * 9)::integer,
                mins => floor(pg_temp.rnd(c.review_id, 43) * 60)::integer) AS issued_local,
        (p.window_end AT TIME ZONE 'UTC') AT TIME ZONE p.source_tz AS now_local
    FROM cycles AS c
    CROSS JOIN params AS p
)

SELECT
    o.review_id,
    o.service_id,
    o.cycle_no,
    o.planned_date,
    CASE WHEN pg_temp.rnd(o.review_id, 44) < 0.8 THEN o.planned_date + 10 END,
    CASE
        WHEN o.service_status = 'cancelled' AND o.planned_date > o.now_local::date THEN 'cancelled'
        WHEN o.fate < 0.04 THEN 'cancelled'
        WHEN o.issued_local > o.now_local THEN CASE WHEN o.planned_date <= o.now_local::date
            THEN 'in_progress' ELSE 'planned' END
        WHEN o.fate < 0.10 THEN 'in_progress'
        WHEN o.fate < 0.45 THEN 'completed'
        WHEN o.fate < 0.80 THEN 'report_issued'
        ELSE 'closed'
    END,
    CASE WHEN o.cycle_no = o.cycle_count THEN 1.5 ELSE 1.0 END,
    pg_temp.pick(ARRAY['Architecture', 'Structural', 'Mechanical, Electrical', 'Hydraulic, Civil',
        'Architecture, Structural, Mechanical'], o.review_id, 45),
    pg_temp.pick(ARRAY['Drawings; Specification', 'Drawings', 'Model; Clash report', 'Report',
        'Drawings; Schedules; Calculations'], o.review_id, 46),
    CASE
        WHEN o.fate >= 0.10 AND o.issued_local <= o.now_local
            AND NOT (o.service_status = 'cancelled' AND o.planned_date > o.now_local::date)
            THEN o.issued_local
    END,
    1 + floor(pg_temp.rnd(o.review_id, 47) * (SELECT count(*) FROM dbo.users))::integer
FROM outcome AS o;

-- Claims lag or lead the earned value: some services are over-claimed (negative variance).
UPDATE dbo."ProjectServices" AS s
SET claimed_to_date = LEAST(s.agreed_fee, round(s.agreed_fee * s.progress_pct / 100
    * (0.55 + pg_temp.rnd(s.service_id, 48) * 0.6)::numeric, -2))
FROM new_service AS ns
WHERE ns.service_id = s.service_id;
