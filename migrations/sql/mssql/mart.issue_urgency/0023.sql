-- mart.issue_urgency
-- Question:   how many open issues are urgent, per project and day, and how urgent is each project's open
--             backlog over time (the text analytics in effect that day, as the daily snapshot carries them)?
-- Grain:      one row per (snapshot date, project) with at least one open issue that day.
-- Rule:       high urgency <=> the urgency score in effect that day is at least 0.8 (scores run 0-1; the
--             top fifth of the demo's uniform scores). An issue without analytics that day is open but
--             neither scored nor urgent.
-- Columns:    snapshot_date, fiscal_year, iso_week_label; project_id, project_name, client_name,
--             project_type (current names; 'Unresolved' without a PM project); open_issues; scored_open
--             (open issues with analytics that day); high_urgency_open; high_urgency_high_priority_open
--             (also Critical or High priority); avg_urgency_open and max_urgency_open (of the scored ones).
-- One text for both dialects (procs/portable): a flag is compared with '1', true in both; counts are BIGINT
-- in both (PostgreSQL's count, SQL Server's COUNT cast); the mean is of the scores as DECIMAL(9, 4), exact.
CREATE OR ALTER VIEW mart.issue_urgency AS
SELECT
    d.full_date AS snapshot_date,
    d.fiscal_year,
    d.iso_week_label,
    p.project_id,
    COALESCE(current_project.project_name, 'Unresolved') AS project_name,
    c.client_name,
    t.type_name AS project_type,
    CAST(COUNT(*) AS BIGINT) AS open_issues,
    CAST(COUNT(f.urgency_score) AS BIGINT) AS scored_open,
    SUM(CASE WHEN f.urgency_score >= 0.8 THEN 1 ELSE 0 END) AS high_urgency_open,
    SUM(CASE WHEN f.urgency_score >= 0.8 AND f.is_high_priority = '1' THEN 1 ELSE 0 END)
        AS high_urgency_high_priority_open,
    ROUND(AVG(CAST(f.urgency_score AS DECIMAL(9, 4))), 4) AS avg_urgency_open,
    MAX(f.urgency_score) AS max_urgency_open
FROM fact.issue_daily AS f
INNER JOIN dim.date AS d ON d.date_key = f.snapshot_date_key
INNER JOIN dim.project AS p ON p.project_sk = f.project_sk
LEFT JOIN dim.project AS current_project
    ON current_project.project_id = p.project_id AND current_project.is_current = '1' AND p.project_sk <> -1
LEFT JOIN dim.client AS c ON c.client_id = current_project.client_id AND c.is_current = '1'
LEFT JOIN dim.project_type AS t ON t.type_id = current_project.type_id AND t.is_current = '1'
WHERE f.is_open = '1'
GROUP BY d.full_date, d.fiscal_year, d.iso_week_label, p.project_id, current_project.project_name, c.client_name,
    t.type_name;
