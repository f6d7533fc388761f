-- mart.review_performance
-- Question:   are reviews delivered on time, and by how much do they slip, per project and planned month?
-- Grain:      one row per (project, month of the planned date) with reviews that are not cancelled or deleted.
-- Columns:    project_id, project_name, client_name (current names); planned_month (first day);
--             reviews (not cancelled, not deleted: business-rules.md); completed; completed_on_time (issued
--             on or before COALESCE(due, planned) date); on_time_rate (completed_on_time / completed, NULL
--             with none completed); overdue (open past their date at the latest run's as-of date);
--             avg_slippage_days (mean planned-vs-actual days of completed reviews; negative = early).
CREATE OR REPLACE VIEW mart.review_performance AS
SELECT
    p.project_id,
    p.project_name,
    c.client_name,
    date_trunc('month', planned.full_date)::date AS planned_month,
    count(*) AS reviews,
    count(*) FILTER (WHERE f.is_completed) AS completed,
    count(*) FILTER (WHERE f.is_completed AND issued.full_date <= COALESCE(due.full_date, planned.full_date))
        AS completed_on_time,
    round(
        count(*) FILTER (WHERE f.is_completed AND issued.full_date <= COALESCE(due.full_date, planned.full_date))::numeric
        / NULLIF(count(*) FILTER (WHERE f.is_completed), 0), 3
    ) AS on_time_rate,
    count(*) FILTER (WHERE f.is_overdue) AS overdue,
    round(avg(f.planned_vs_actual_days) FILTER (WHERE f.is_completed), 1) AS avg_slippage_days
FROM fact.review AS f
JOIN dim.date AS planned ON planned.date_key = f.planned_date_key
LEFT JOIN dim.date AS due ON due.date_key = f.due_date_key AND f.due_date_key <> -1
LEFT JOIN dim.date AS issued ON issued.date_key = f.issued_date_key AND f.issued_date_key <> -1
JOIN dim.project AS project_version ON project_version.project_sk = f.project_sk
LEFT JOIN dim.project AS p ON p.project_id = project_version.project_id AND p.is_current
LEFT JOIN dim.client AS c ON c.client_id = p.client_id AND c.is_current
WHERE NOT f.is_cancelled AND NOT f.is_deleted
GROUP BY p.project_id, p.project_name, c.client_name, date_trunc('month', planned.full_date)::date;
