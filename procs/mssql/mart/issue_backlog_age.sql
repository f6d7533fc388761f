-- mart.issue_backlog_age
-- Question:   how old is each project's open-issue backlog today (the as-of date of the latest published
--             run, ctl.publication: with no open issue left on it, a project has no row, not yesterday's)?
-- Grain:      one row per (project, age bucket) with at least one open issue on that date.
-- Columns:    snapshot_date; project_id, project_name, client_name, project_type (current names; NULLs and
--             'Unresolved' for issues without a PM project); age_bucket ('0-7', '8-30', '31-90', '90+'
--             days since creation) and bucket_order (1-4, for sorting); open_issues;
--             high_priority_open (Critical or High); oldest_age_days.
CREATE OR ALTER VIEW mart.issue_backlog_age AS
WITH latest AS (
    SELECT TOP (1) as_of_date_key AS snapshot_date_key FROM ctl.publication ORDER BY run_id DESC
),

open_issue AS (
    SELECT
        f.snapshot_date_key,
        f.project_sk,
        f.is_high_priority,
        f.backlog_age_days,
        CASE
            WHEN f.backlog_age_days <= 7 THEN 1
            WHEN f.backlog_age_days <= 30 THEN 2
            WHEN f.backlog_age_days <= 90 THEN 3
            ELSE 4
        END AS bucket_order
    FROM fact.issue_daily AS f
    INNER JOIN latest AS l ON l.snapshot_date_key = f.snapshot_date_key
    WHERE f.is_open = 1
)

SELECT
    d.full_date AS snapshot_date,
    p.project_id,
    COALESCE(current_project.project_name, N'Unresolved') AS project_name,
    c.client_name,
    t.type_name AS project_type,
    CHOOSE(o.bucket_order, N'0-7', N'8-30', N'31-90', N'90+') AS age_bucket,
    o.bucket_order,
    COUNT_BIG(*) AS open_issues,
    SUM(CASE WHEN o.is_high_priority = 1 THEN 1 ELSE 0 END) AS high_priority_open,
    MAX(o.backlog_age_days) AS oldest_age_days
FROM open_issue AS o
INNER JOIN dim.date AS d ON d.date_key = o.snapshot_date_key
INNER JOIN dim.project AS p ON p.project_sk = o.project_sk
LEFT JOIN dim.project AS current_project
    ON current_project.project_id = p.project_id AND current_project.is_current = 1 AND p.project_sk <> -1
LEFT JOIN dim.client AS c ON c.client_id = current_project.client_id AND c.is_current = 1
LEFT JOIN dim.project_type AS t ON t.type_id = current_project.type_id AND t.is_current = 1
GROUP BY d.full_date, p.project_id, current_project.project_name, c.client_name, t.type_name, o.bucket_order;
