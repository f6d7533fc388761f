-- mart.project_scorecard
-- Question:   where does each project stand this month, and what moved since last month's end?
-- Grain:      one row per row of fact.project_monthly in the current month (the as-of month of the latest
--             published run, ctl.publication, whether or not a newer month has rows): every project live
--             then, the unknown project (-1, 'Unresolved') when issues or services without a PM project are
--             counted, and a project deleted at the source only while issues or services still count under
--             it; so the month's rows add up to the snapshots' (business-rules.md, Facts).
-- Columns:    month (first day), fiscal_year; project_id, project_name, client_name, project_type (current
--             names); issues_open, issues_open_change (against the previous month's end; NULL without one),
--             high_priority_open, avg_resolution_days; reviews_total, reviews_completed, reviews_overdue,
--             review_completion_rate (completed / total, NULL without reviews); services_in_progress,
--             services_completed; earned_value, claimed, variance, variance_change (against the previous
--             month's end); attention: 'overdue reviews', 'high-priority issues', 'claimed ahead of progress'
--             or NULL, the first that applies, in that order.
CREATE OR REPLACE VIEW mart.project_scorecard AS
WITH this_month AS (
    SELECT as_of_month_key AS month_date_key FROM ctl.publication ORDER BY run_id DESC LIMIT 1
)

SELECT
    d.full_date AS month,
    d.fiscal_year,
    o.project_id,
    o.project_name,
    o.client_name,
    o.project_type,
    o.issues_open,
    o.issues_open - previous.issues_open AS issues_open_change,
    o.high_priority_open,
    o.avg_resolution_days,
    o.reviews_total,
    o.reviews_completed,
    o.reviews_overdue,
    round(o.reviews_completed::numeric / NULLIF(o.reviews_total, 0), 3) AS review_completion_rate,
    o.services_in_progress,
    o.services_completed,
    o.earned_value,
    o.claimed,
    o.variance,
    o.variance - previous.variance AS variance_change,
    CASE
        WHEN o.reviews_overdue > 0 THEN 'overdue reviews'
        WHEN o.high_priority_open > 0 THEN 'high-priority issues'
        WHEN o.variance < 0 THEN 'claimed ahead of progress'
    END AS attention
FROM this_month AS m
JOIN dim.date AS d ON d.date_key = m.month_date_key
JOIN mart.project_overview AS o ON o.month = d.full_date
LEFT JOIN fact.project_monthly AS previous
    ON previous.project_id = o.project_id
    AND previous.month_date_key = to_char(d.full_date - interval '1 month', 'YYYYMMDD')::integer;
