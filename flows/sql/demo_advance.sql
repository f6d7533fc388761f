-- One simulated day of the application, from window_start to window_end (UTC), day day_number.
-- Issues: edits, status changes, closures, reopenings, deletions (ACC flags them; Revizto removes
-- the row, its is_deleted stays 0), moves to another tracker project of the same tracker (a new
-- source_project_id, the same issue otherwise: a new identity, the old key simply vanishes), a bulk
-- edit sharing one timestamp, and a few edits committed late (stamped up to 3 hours before the day
-- began, older than rows already visible). Services: progress and claims move without touching updated_at.
-- Reviews: completed, cancelled and hard-deleted (the trigger rewrites progress_pct). Projects:
-- renamed (updated_at set only half the time). Categories and text analytics: occasional edits and
-- re-processing. New issues and projects come from demo_issues.sql and demo_projects.sql.

DROP TABLE IF EXISTS pg_temp.issue_change;
CREATE TEMP TABLE issue_change ON COMMIT DROP AS
WITH day AS (
    SELECT p.*, p.day_number * 100 AS salt FROM params AS p
),

issues AS (
    SELECT
        i.source,
        i.source_project_id,
        i.source_issue_id,
        i.pm_project_id,
        i.issue_id,
        i.source_updated_at,
        hashtext(i.source || i.source_issue_id)::bigint AS n,
        COALESCE(m.is_closed, FALSE) AS is_closed
    FROM dbo."vw_ProjectManagement_AllIssues" AS i
    LEFT JOIN dbo.issue_status_map AS m ON m.source_system = i.source AND m.raw_status = i.status
    WHERE NOT i.is_deleted
),

drawn AS (
    SELECT
        iss.*,
        d.salt,
        d.window_start,
        pg_temp.rnd(iss.n, d.salt + 1) AS u,
        d.window_start + pg_temp.rnd(iss.n, d.salt + 2) * interval '1 day' AS during_day
    FROM issues AS iss
    CROSS JOIN day AS d
),

-- One project per day gets a bulk edit: up to 20 of its open issues share one timestamp.
bulk_project AS (
    SELECT tp.source, tp.source_project_id
    FROM pmw_demo.tracker_project AS tp
    CROSS JOIN day AS d
    WHERE tp.source = 'ACC'
    ORDER BY pg_temp.rnd(hashtext(tp.source_project_id)::bigint, d.salt + 3)
    LIMIT 1
),

kinds AS (
    SELECT
        dr.*,
        CASE
            WHEN NOT dr.is_closed AND dr.u < 0.005 THEN 'edit'
            WHEN NOT dr.is_closed AND dr.u < 0.025 THEN 'status'
            WHEN NOT dr.is_closed AND dr.u < 0.040 THEN 'close'
            WHEN NOT dr.is_closed AND dr.u < 0.041 THEN 'delete'
            -- late commit: only rows not touched since before the back-dated stamp (ACC stamps are UTC)
            WHEN NOT dr.is_closed AND dr.u < 0.044 AND dr.source = 'ACC'
                AND dr.source_updated_at < dr.window_start - interval '3 hours' THEN 'late'
            WHEN NOT dr.is_closed AND dr.u >= 0.044 AND dr.u < 0.0445 THEN 'move'
            WHEN dr.is_closed AND dr.u < 0.003 THEN 'reopen'
            WHEN dr.is_closed AND dr.u < 0.004 THEN 'delete'
            WHEN NOT dr.is_closed AND EXISTS (
                SELECT 1 FROM bulk_project AS b
                WHERE b.source = dr.source AND b.source_project_id = dr.source_project_id
            ) THEN 'bulk'
        END AS change_kind
    FROM drawn AS dr
),

bulk_limited AS (
    SELECT
        k.*,
        row_number() OVER (PARTITION BY k.change_kind ORDER BY k.issue_id) AS kind_rank
    FROM kinds AS k
    WHERE k.change_kind IS NOT NULL
)

SELECT
    b.source,
    b.source_project_id,
    b.source_issue_id,
    b.change_kind,
    date_trunc('second', CASE b.change_kind
        WHEN 'bulk' THEN d.window_start + interval '10 hours'
        WHEN 'late' THEN d.window_start - pg_temp.rnd(b.n, d.salt + 4) * interval '3 hours'
        ELSE b.during_day
    END) AS changed_at,
    CASE
        WHEN b.change_kind = 'status' AND b.source = 'ACC'
            THEN pg_temp.pick(ARRAY['open', 'pending', 'in_review'], b.n, d.salt + 5)
        WHEN b.change_kind = 'status' THEN pg_temp.pick(ARRAY['Open', 'In progress', 'Ready to check'], b.n, d.salt + 5)
        WHEN b.change_kind = 'close' AND b.source = 'ACC' THEN pg_temp.pick(ARRAY['closed', 'closed', 'void'], b.n, d.salt + 6)
        WHEN b.change_kind = 'close' THEN pg_temp.pick(ARRAY['Solved', 'Closed'], b.n, d.salt + 6)
        WHEN b.change_kind = 'reopen' AND b.source = 'ACC' THEN 'open'
        WHEN b.change_kind = 'reopen' THEN 'Open'
    END AS new_status,
    CASE WHEN b.change_kind IN ('edit', 'late', 'bulk') THEN
        CASE b.source
            WHEN 'ACC' THEN pg_temp.pick(ARRAY['Blocker', 'Critical', 'Major', 'Minor', 'Trivial'], b.n, d.salt + 7)
            ELSE pg_temp.pick(ARRAY['L1 - Critical', 'L2 - High', 'L3 - Medium', 'L4 - Low'], b.n, d.salt + 7)
        END
    END AS new_priority,
    CASE WHEN b.change_kind IN ('edit', 'bulk') THEN
        (SELECT u.name FROM dbo.users AS u
            WHERE u.user_id = 1 + floor(pg_temp.rnd(b.n, d.salt + 8) * (SELECT count(*) FROM dbo.users))::integer)
    END AS new_assignee,
    CASE WHEN b.change_kind = 'edit' AND pg_temp.rnd(b.n, d.salt + 9) < 0.5 THEN ' (updated)' ELSE '' END
        AS title_suffix,
    target.source_project_id AS new_project_id,
    target.pm_project_id AS new_pm_project_id,
    target.project_name AS new_project_name,
    -- issue numbers are per tracker project: a moved issue takes the next free number of its new project
    target.last_number + row_number() OVER (PARTITION BY b.source, target.source_project_id ORDER BY b.source_issue_id)
        AS new_issue_number
FROM bulk_limited AS b
CROSS JOIN day AS d
-- a moved issue's new tracker project: another one of its tracker, drawn per issue
LEFT JOIN LATERAL (
    SELECT
        tp.source_project_id,
        tp.pm_project_id,
        tp.project_name,
        (SELECT COALESCE(max(v.issue_id), 0) FROM dbo."vw_ProjectManagement_AllIssues" AS v
            WHERE v.source = tp.source AND v.source_project_id = tp.source_project_id) AS last_number
    FROM pmw_demo.tracker_project AS tp
    WHERE b.change_kind = 'move' AND tp.source = b.source AND tp.source_project_id <> b.source_project_id
    ORDER BY pg_temp.rnd(b.n + tp.tp_index, d.salt + 10), tp.tp_index
    LIMIT 1
) AS target ON TRUE
WHERE b.change_kind <> 'bulk' OR b.kind_rank <= 20;

UPDATE dbo.acc_issues AS a
SET
    status = COALESCE(c.new_status, a.status),
    priority = COALESCE(c.new_priority, a.priority),
    assigned_to = COALESCE(c.new_assignee, a.assigned_to),
    title = left(a.title || c.title_suffix, 500),
    closed_at = CASE c.change_kind WHEN 'close' THEN c.changed_at WHEN 'reopen' THEN NULL ELSE a.closed_at END,
    is_deleted = a.is_deleted OR c.change_kind = 'delete',
    deleted_at = CASE WHEN c.change_kind = 'delete' THEN c.changed_at ELSE a.deleted_at END,
    acc_project_id = COALESCE(c.new_project_id, a.acc_project_id),
    issue_number = COALESCE(c.new_issue_number, a.issue_number),
    pm_project_id = CASE WHEN c.new_project_id IS NOT NULL THEN c.new_pm_project_id ELSE a.pm_project_id END,
    project_name = COALESCE(c.new_project_name, a.project_name),
    updated_at = c.changed_at
FROM issue_change AS c
WHERE c.source = 'ACC' AND a.acc_project_id = c.source_project_id AND a.acc_issue_id = c.source_issue_id;

-- Revizto removes a deleted issue outright (never flags it). pmw_demo.revizto_removed keeps the rows:
-- demo_source.py lends them back to the generator of new issues, which numbers issues by count.
INSERT INTO pmw_demo.revizto_removed
SELECT r.*
FROM dbo.revizto_issues AS r
INNER JOIN issue_change AS c
    ON c.source = 'Revizto'
    AND c.change_kind = 'delete'
    AND r.revizto_project_id = c.source_project_id::bigint
    AND r.revizto_issue_id = c.source_issue_id::bigint;

DELETE FROM dbo.revizto_issues AS r
USING issue_change AS c
WHERE c.source = 'Revizto'
    AND c.change_kind = 'delete'
    AND r.revizto_project_id = c.source_project_id::bigint
    AND r.revizto_issue_id = c.source_issue_id::bigint;

UPDATE dbo.revizto_issues AS r
SET
    status = COALESCE(c.new_status, r.status),
    priority = COALESCE(c.new_priority, r.priority),
    assignee = COALESCE(c.new_assignee, r.assignee),
    title = left(r.title || c.title_suffix, 500),
    closed_local = CASE c.change_kind
        WHEN 'close' THEN (c.changed_at AT TIME ZONE 'UTC') AT TIME ZONE p.source_tz
        WHEN 'reopen' THEN NULL
        ELSE r.closed_local
    END,
    revizto_project_id = COALESCE(c.new_project_id::bigint, r.revizto_project_id),
    issue_number = COALESCE(c.new_issue_number, r.issue_number),
    pm_project_id = CASE WHEN c.new_project_id IS NOT NULL THEN c.new_pm_project_id ELSE r.pm_project_id END,
    project_name = COALESCE(c.new_project_name, r.project_name),
    updated_local = (c.changed_at AT TIME ZONE 'UTC') AT TIME ZONE p.source_tz
FROM issue_change AS c
CROSS JOIN params AS p
WHERE c.source = 'Revizto'
    AND r.revizto_project_id = c.source_project_id::bigint
    AND r.revizto_issue_id = c.source_issue_id::bigint;

-- Services: fee-based work progresses, planned work starts, claims are made fortnightly. The
-- application never touches updated_at for any of this.
UPDATE dbo."ProjectServices" AS s
SET
    status = CASE
        WHEN s.status = 'planned' THEN 'in_progress'
        WHEN s.unit_type NOT IN ('review', 'audit') AND s.progress_pct + step.amount >= 100 THEN 'completed'
        ELSE s.status
    END,
    progress_pct = CASE
        WHEN s.unit_type IN ('review', 'audit') THEN s.progress_pct
        ELSE LEAST(100, s.progress_pct + step.amount)
    END
FROM (
    SELECT
        sv.service_id,
        round((pg_temp.rnd(sv.service_id, p.day_number * 100 + 20) * 4)::numeric, 2) AS amount
    FROM dbo."ProjectServices" AS sv
    CROSS JOIN params AS p
    WHERE (sv.status = 'in_progress' AND sv.unit_type NOT IN ('review', 'audit'))
        OR (sv.status = 'planned' AND pg_temp.rnd(sv.service_id, p.day_number * 100 + 21) < 0.05)
) AS step
WHERE step.service_id = s.service_id;

UPDATE dbo."ProjectServices" AS s
SET claimed_to_date = LEAST(s.agreed_fee,
    round(s.agreed_fee * s.progress_pct / 100 * (0.8 + pg_temp.rnd(s.service_id, p.day_number * 100 + 22) * 0.3)::numeric, -2))
FROM params AS p
WHERE p.day_number % 14 = 0 AND s.status IN ('in_progress', 'completed');

-- Reviews: those due are completed (or started); a few are cancelled; one planned review a day is
-- deleted outright. Each statement fires the progress trigger.
DROP TABLE IF EXISTS pg_temp.review_change;
CREATE TEMP TABLE review_change ON COMMIT DROP AS
WITH day AS (
    SELECT
        p.*,
        p.day_number * 100 AS salt,
        ((p.window_end AT TIME ZONE 'UTC') AT TIME ZONE p.source_tz)::date AS local_today
    FROM params AS p
),

open_reviews AS (
    SELECT r.review_id, r.status, r.planned_date, d.salt, d.local_today, d.window_start, d.source_tz,
        pg_temp.rnd(r.review_id, d.salt + 30) AS u
    FROM dbo."ServiceReviews" AS r
    CROSS JOIN day AS d
    WHERE r.status IN ('planned', 'in_progress')
),

due AS (
    SELECT o.*, row_number() OVER (ORDER BY o.planned_date <= o.local_today DESC, o.u) AS due_rank,
        count(*) FILTER (WHERE o.planned_date <= o.local_today) OVER () AS due_count
    FROM open_reviews AS o
)

SELECT
    due.review_id,
    CASE
        WHEN due.due_rank <= GREATEST(1, ceil(0.7 * due.due_count)) THEN
            pg_temp.pick(ARRAY['completed', 'completed', 'report_issued'], due.review_id, due.salt + 31)
        WHEN due.due_rank <= GREATEST(2, ceil(0.7 * due.due_count) + 1) THEN 'cancelled'
        WHEN due.due_rank <= GREATEST(3, ceil(0.7 * due.due_count) + 2) THEN 'deleted'
        WHEN due.planned_date <= due.local_today AND due.status = 'planned' THEN 'in_progress'
    END AS new_status,
    (date_trunc('second', due.window_start + pg_temp.rnd(due.review_id, due.salt + 32) * interval '1 day')
        AT TIME ZONE 'UTC') AT TIME ZONE due.source_tz AS issued_local
FROM due;

DELETE FROM dbo."ServiceReviews" AS r
USING review_change AS c
WHERE c.review_id = r.review_id AND c.new_status = 'deleted';

UPDATE dbo."ServiceReviews" AS r
SET
    status = c.new_status,
    actual_issued_at = CASE WHEN c.new_status IN ('completed', 'report_issued') THEN c.issued_local
        ELSE r.actual_issued_at END
FROM review_change AS c
WHERE c.review_id = r.review_id AND c.new_status IN ('completed', 'report_issued', 'cancelled', 'in_progress');

UPDATE dbo."ServiceReviews" AS r
SET status = 'closed'
FROM params AS p
WHERE r.status = 'report_issued' AND pg_temp.rnd(r.review_id, p.day_number * 100 + 33) < 0.05;

-- Projects: one renamed per day (per 2 scale units); the application sets updated_at half the time.
UPDATE dbo.projects AS pr
SET
    project_name = regexp_replace(pr.project_name, ' Stage [0-9]+$', '') || ' Stage ' || (2 + p.day_number % 4),
    updated_at = CASE WHEN pg_temp.rnd(pr.project_id, p.day_number * 100 + 41) < 0.5
        THEN p.window_start + interval '9 hours' ELSE pr.updated_at END
FROM params AS p
WHERE pr.project_id IN (
    SELECT pj.project_id
    FROM dbo.projects AS pj
    ORDER BY pg_temp.rnd(pj.project_id, p.day_number * 100 + 40)
    LIMIT GREATEST(1, p.scale / 2)
);

-- Categories: every fifth day one sub-type is renamed or retired, stamped with updated_at.
UPDATE dbo."IssueCategories" AS c
SET
    category_name = CASE WHEN p.day_number % 10 = 0 THEN c.category_name ELSE c.category_name || ' (revised)' END,
    is_active = CASE WHEN p.day_number % 10 = 0 THEN FALSE ELSE c.is_active END,
    updated_at = p.window_start + interval '8 hours'
FROM params AS p
WHERE p.day_number % 5 = 0
    AND c.category_id = 31 + floor(pg_temp.rnd(p.day_number, 42) * 72)::integer;

-- Text analytics: about 2 % of processed issues are re-processed every day.
UPDATE dbo."ProcessedIssues" AS pi
SET
    processed_at = (date_trunc('second', p.window_start + pg_temp.rnd(hashtext(pi.source_issue_id)::bigint,
        p.day_number * 100 + 50) * interval '1 day') AT TIME ZONE 'UTC') AT TIME ZONE p.source_tz,
    processing_version = pi.processing_version + 1,
    urgency_score = round(pg_temp.rnd(hashtext(pi.source_issue_id)::bigint, p.day_number * 100 + 51)::numeric, 4),
    comment_count = pi.comment_count + 1
FROM params AS p
WHERE pg_temp.rnd(hashtext(pi.source || pi.source_issue_id)::bigint, p.day_number * 100 + 52) < 0.02;

UPDATE pmw_demo.state AS s
SET clock_at = p.window_end, day_number = p.day_number
FROM params AS p;
