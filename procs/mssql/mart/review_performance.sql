-- mart.review_performance
-- Question:   are reviews delivered on time, and by how much do they slip, per project and planned month?
-- Grain:      one row per (project, month of the planned date) with reviews that are not cancelled or deleted.
-- Columns:    project_id, project_name, client_name (current names); planned_month (first day);
--             reviews (not cancelled, not deleted: business-rules.md); completed; completed_on_time (issued
--             on or before COALESCE(due, planned) date); on_time_rate (completed_on_time / completed, NULL
--             with none completed); overdue (open past their date at the latest run's as-of date);
--             avg_slippage_days (mean planned-vs-actual days of completed reviews; negative = early).
CREATE OR ALTER VIEW mart.review_performance AS
WITH graded AS (
    SELECT
        p.project_id,
        p.project_name,
        c.client_name,
        DATEFROMPARTS(YEAR(planned.full_date), MONTH(planned.full_date), 1) AS planned_month,
        CAST(f.is_completed AS INT) AS completed,
        CASE WHEN f.is_completed = 1 AND issued.full_date <= COALESCE(due.full_date, planned.full_date)
            THEN 1 ELSE 0 END AS on_time,
        CAST(f.is_overdue AS INT) AS overdue,
        CASE WHEN f.is_completed = 1 THEN CAST(f.planned_vs_actual_days AS DECIMAL(10, 1)) END AS slippage
    FROM fact.review AS f
    INNER JOIN dim.date AS planned ON planned.date_key = f.planned_date_key
    LEFT JOIN dim.date AS due ON due.date_key = f.due_date_key AND f.due_date_key <> -1
    LEFT JOIN dim.date AS issued ON issued.date_key = f.issued_date_key AND f.issued_date_key <> -1
    INNER JOIN dim.project AS project_version ON project_version.project_sk = f.project_sk
    LEFT JOIN dim.project AS p ON p.project_id = project_version.project_id AND p.is_current = 1
    LEFT JOIN dim.client AS c ON c.client_id = p.client_id AND c.is_current = 1
    WHERE f.is_cancelled = 0 AND f.is_deleted = 0
)

SELECT
    project_id,
    project_name,
    client_name,
    planned_month,
    COUNT_BIG(*) AS reviews,
    SUM(completed) AS completed,
    SUM(on_time) AS completed_on_time,
    ROUND(CAST(SUM(on_time) AS DECIMAL(10, 3)) / NULLIF(SUM(completed), 0), 3) AS on_time_rate,
    SUM(overdue) AS overdue,
    ROUND(AVG(slippage), 1) AS avg_slippage_days
FROM graded
GROUP BY project_id, project_name, client_name, planned_month;
