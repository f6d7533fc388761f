-- mart.issue_trend
-- Question:   how does the issue backlog evolve day by day, by project, client, project type, discipline
--             and priority?
-- Grain:      one row per (snapshot date, project, discipline, priority) that has issues that day.
-- Columns:    snapshot_date, fiscal_year, iso_week_label; project_id, project_name, client_name,
--             project_type (current names; 'Unresolved' without a PM project); discipline (the level-1
--             category the issue's current text analytics give it, current name; 'Unassigned' without one);
--             priority (Critical, High,
--             Medium, Low, or 'None'); issues (existing, not deleted); open_issues; closed_issues;
--             opened_today (created that local day); avg_open_age_days (mean backlog age of the open ones).
-- One text for both dialects (procs/portable): a flag is compared with '1', true in both; counts are BIGINT
-- in both (PostgreSQL's count, SQL Server's COUNT cast); the mean is of the days as DECIMAL(10, 1), exact.
CREATE VIEW mart.issue_trend AS
SELECT
    d.full_date AS snapshot_date,
    d.fiscal_year,
    d.iso_week_label,
    p.project_id,
    COALESCE(current_project.project_name, 'Unresolved') AS project_name,
    c.client_name,
    t.type_name AS project_type,
    COALESCE(discipline.category_name, 'Unassigned') AS discipline,
    COALESCE(f.priority, 'None') AS priority,
    CAST(COUNT(*) AS BIGINT) AS issues,
    SUM(CASE WHEN f.is_open = '1' THEN 1 ELSE 0 END) AS open_issues,
    SUM(CASE WHEN f.is_closed = '1' THEN 1 ELSE 0 END) AS closed_issues,
    SUM(CASE WHEN f.created_date_key = f.snapshot_date_key THEN 1 ELSE 0 END) AS opened_today,
    ROUND(AVG(CAST(f.backlog_age_days AS DECIMAL(10, 1))), 1) AS avg_open_age_days
FROM fact.issue_daily AS f
INNER JOIN dim.date AS d ON d.date_key = f.snapshot_date_key
INNER JOIN dim.project AS p ON p.project_sk = f.project_sk
LEFT JOIN dim.project AS current_project
    ON current_project.project_id = p.project_id AND current_project.is_current = '1' AND p.project_sk <> -1
LEFT JOIN dim.client AS c ON c.client_id = current_project.client_id AND c.is_current = '1'
LEFT JOIN dim.project_type AS t ON t.type_id = current_project.type_id AND t.is_current = '1'
LEFT JOIN brg.issue_category AS b ON b.issue_key = f.issue_key AND b.category_role = 'discipline'
LEFT JOIN dim.issue_category AS discipline
    ON discipline.category_id = b.category_id AND discipline.is_current = '1'
GROUP BY d.full_date, d.fiscal_year, d.iso_week_label, p.project_id, current_project.project_name, c.client_name,
    t.type_name, COALESCE(discipline.category_name, 'Unassigned'), COALESCE(f.priority, 'None');
