-- mart.service_financials
-- Question:   what is each service's earned value against what was claimed, month by month?
-- Grain:      one row per (month, service) from fact.service_monthly.
-- Columns:    month (first day), fiscal_year; project_id, project_name, client_name, service_id, service_code,
--             service_name (current names); agreed_fee, progress_pct, earned_value (fee x progress / 100),
--             claimed (claimed to date), variance (earned - claimed: positive = work done but not yet claimed,
--             negative = claimed ahead of progress); reviews_total, reviews_completed, reviews_overdue.
-- One text for both dialects (procs/portable): a flag is compared with '1', true in both.
CREATE VIEW mart.service_financials AS
SELECT
    d.full_date AS month,
    d.fiscal_year,
    p.project_id,
    p.project_name,
    c.client_name,
    s.service_id,
    s.service_code,
    s.service_name,
    f.agreed_fee,
    f.progress_pct,
    f.earned_value,
    f.claimed,
    f.variance,
    f.reviews_total,
    f.reviews_completed,
    f.reviews_overdue
FROM fact.service_monthly AS f
INNER JOIN dim.date AS d ON d.date_key = f.month_date_key
INNER JOIN dim.service AS s ON s.service_id = f.service_id AND s.is_current = '1'
INNER JOIN dim.project AS project_version ON project_version.project_sk = f.project_sk
LEFT JOIN dim.project AS p ON p.project_id = project_version.project_id AND p.is_current = '1'
LEFT JOIN dim.client AS c ON c.client_id = p.client_id AND c.is_current = '1';
