-- mart.project_overview
-- Question:   how is each project doing, month by month: issues, reviews, services and money?
-- Grain:      one row per (month, project) from fact.project_monthly: the state at the month's end, or at
--             the latest run's as-of instant for the current month.
-- Columns:    month (first day), fiscal_year (labelled by the calendar year it ends in), fiscal_quarter (1-4),
--             fiscal_month (1 = the fiscal year's first month); project_id, project_name, client_name,
--             project_type (current names; the unknown project, -1, is named 'Unresolved' as in the issue
--             marts: its row holds the issues and services without a PM project, so that a month's rows
--             add up to the snapshots'); issues_total, issues_open, issues_closed, high_priority_open
--             (Critical or High), avg_resolution_days (closed issues); reviews_total (not cancelled),
--             reviews_completed, reviews_overdue; services_in_progress, services_completed; earned_value
--             (fee x progress / 100), claimed (claimed to date), variance (earned - claimed).
CREATE OR ALTER VIEW mart.project_overview AS
SELECT
    d.full_date AS month,
    d.fiscal_year,
    d.fiscal_quarter,
    d.fiscal_month_number AS fiscal_month,
    f.project_id,
    CASE WHEN f.project_id = -1 THEN N'Unresolved' ELSE p.project_name END AS project_name,
    c.client_name,
    t.type_name AS project_type,
    f.issues_total,
    f.issues_open,
    f.issues_closed,
    f.high_priority_open,
    f.avg_resolution_days,
    f.reviews_total,
    f.reviews_completed,
    f.reviews_overdue,
    f.services_in_progress,
    f.services_completed,
    f.earned_value,
    f.claimed,
    f.variance
FROM fact.project_monthly AS f
INNER JOIN dim.date AS d ON d.date_key = f.month_date_key
LEFT JOIN dim.project AS p ON p.project_id = f.project_id AND p.is_current = 1
LEFT JOIN dim.client AS c ON c.client_id = p.client_id AND c.is_current = 1
LEFT JOIN dim.project_type AS t ON t.type_id = p.type_id AND t.is_current = 1;
