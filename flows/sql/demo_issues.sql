-- New issues of one tracker (params.tracker: ACC or Revizto), created in [window_start, window_end)
-- on that tracker's projects, with their life up to window_end: closures, deletions, edits. Issue
-- numbers continue per tracker project. ACC stores UTC; Revizto the source server's local time.
-- About 5 % of rows carry a bulk-edit timestamp (17:00 of their day) shared with other rows.

DROP TABLE IF EXISTS pg_temp.new_issue;
CREATE TEMP TABLE new_issue ON COMMIT DROP AS
WITH settings AS MATERIALIZED (
    SELECT
        p.*,
        CASE p.tracker WHEN 'ACC' THEN 100 ELSE 200 END AS salt,
        CASE p.tracker
            WHEN 'ACC' THEN (SELECT count(*) FROM dbo.acc_issues)
            ELSE (SELECT count(*) FROM dbo.revizto_issues)
        END AS issues_before,
        (SELECT count(*) FROM pmw_demo.tracker_project AS tp WHERE tp.source = p.tracker) AS tracker_project_count,
        (SELECT count(*) FROM dbo.users) AS user_count
    FROM params AS p
),

numbers_before AS (
    SELECT a.acc_project_id AS source_project_id, max(a.issue_number) AS last_number
    FROM dbo.acc_issues AS a
    WHERE (SELECT tracker FROM params) = 'ACC'
    GROUP BY a.acc_project_id
    UNION ALL
    SELECT r.revizto_project_id::text, max(r.issue_number)
    FROM dbo.revizto_issues AS r
    WHERE (SELECT tracker FROM params) = 'Revizto'
    GROUP BY r.revizto_project_id
),

drafted AS MATERIALIZED (
    SELECT
        s.issues_before + g.k AS n,
        s.salt,
        s.window_end,
        s.user_count,
        floor(power(pg_temp.rnd(s.issues_before + g.k, s.salt + 1), 1.4) * s.tracker_project_count)::integer AS tp_index,
        s.tracker
    FROM settings AS s
    CROSS JOIN generate_series(1, s.issue_count) AS g (k)
    WHERE s.tracker_project_count > 0
),

placed AS (
    SELECT
        d.*,
        tp.source_project_id,
        tp.pm_project_id,
        tp.project_name,
        GREATEST(p.window_start, LEAST(tp.created_at, d.window_end - interval '1 hour')) AS earliest
    FROM drafted AS d
    INNER JOIN pmw_demo.tracker_project AS tp ON tp.source = d.tracker AND tp.tp_index = d.tp_index
    CROSS JOIN params AS p
),

lived AS (
    SELECT
        pl.*,
        date_trunc('second', pl.earliest + (pl.window_end - pl.earliest) * pg_temp.rnd(pl.n, pl.salt + 2))
            AS created_at,
        -ln(1 - pg_temp.rnd(pl.n, pl.salt + 3)) * interval '25 days' AS time_to_close,
        pg_temp.rnd(pl.n, pl.salt + 4) < 0.08 AS stays_open,
        pg_temp.rnd(pl.n, pl.salt + 5) < 0.01 AS is_deleted
    FROM placed AS pl
),

closed AS (
    SELECT
        l.*,
        CASE WHEN NOT l.stays_open AND l.created_at + l.time_to_close < l.window_end
            THEN date_trunc('second', l.created_at + l.time_to_close) END AS closed_at,
        CASE WHEN l.is_deleted
            THEN date_trunc('second', l.created_at + (l.window_end - l.created_at) * pg_temp.rnd(l.n, l.salt + 6))
        END AS deleted_at
    FROM lived AS l
),

touched AS (
    SELECT
        c.*,
        GREATEST(c.created_at, c.closed_at, c.deleted_at) AS last_event_at
    FROM closed AS c
),

stamped AS MATERIALIZED (
    SELECT
        t.*,
        GREATEST(t.last_event_at, LEAST(t.window_end,
            date_trunc('second', t.last_event_at + pg_temp.rnd(t.n, t.salt + 7) * interval '2 days'))) AS edited_at,
        date_trunc('day', t.last_event_at) + interval '17 hours' AS bulk_edit_at,
        1 + floor(pg_temp.rnd(t.n, t.salt + 15) * t.user_count)::integer AS assignee_user_id,
        1 + floor(pg_temp.rnd(t.n, t.salt + 18) * t.user_count)::integer AS author_user_id
    FROM touched AS t
)

SELECT
    st.n,
    st.tracker,
    st.source_project_id,
    st.pm_project_id,
    st.project_name,
    st.created_at,
    st.closed_at,
    st.is_deleted,
    st.deleted_at,
    CASE
        WHEN pg_temp.rnd(st.n, st.salt + 8) < 0.05 AND st.bulk_edit_at BETWEEN st.last_event_at AND st.window_end
            THEN st.bulk_edit_at
        ELSE st.edited_at
    END AS updated_at,
    CASE
        WHEN st.closed_at IS NOT NULL AND st.tracker = 'ACC'
            THEN pg_temp.pick(ARRAY['closed', 'closed', 'closed', 'void'], st.n, st.salt + 9)
        WHEN st.closed_at IS NOT NULL THEN pg_temp.pick(ARRAY['Solved', 'Closed', 'Closed'], st.n, st.salt + 9)
        WHEN st.tracker = 'ACC' THEN pg_temp.pick(ARRAY['open', 'open', 'pending', 'in_review'], st.n, st.salt + 9)
        ELSE pg_temp.pick(ARRAY['Open', 'Open', 'In progress', 'Ready to check'], st.n, st.salt + 9)
    END AS status,
    CASE st.tracker
        WHEN 'ACC' THEN pg_temp.pick(ARRAY['Blocker', 'Critical', 'Major', 'Major', 'Minor', 'Minor', 'Minor',
            'Trivial', 'none', NULL], st.n, st.salt + 10)
        ELSE pg_temp.pick(ARRAY['L1 - Critical', 'L2 - High', 'L2 - High', 'L3 - Medium', 'L3 - Medium',
            'L4 - Low', 'n/a', NULL], st.n, st.salt + 10)
    END AS priority,
    pg_temp.pick(ARRAY['Duct', 'Beam', 'Sprinkler main', 'Cable tray', 'Stormwater pipe', 'Façade panel',
        'Slab penetration', 'Fire door', 'Ceiling grid', 'Lift shaft', 'Riser', 'Column footing'], st.n, st.salt + 11)
        || ' ' || pg_temp.pick(ARRAY['clashes with structure', 'missing dimensions', 'not coordinated with services',
        'needs RFI response', 'non-compliant with NCC', 'level mismatch', 'clearance < 2100 mm',
        'fire rating ≥ 120/120/120 not shown'], st.n, st.salt + 12)
        || ' at ' || pg_temp.pick(ARRAY['Level 1', 'Level 2', 'Level 3', 'Basement B1', 'Roof', 'Plant room',
        'Grid C/4', 'Lobby', 'Stair 2', 'Car park'], st.n, st.salt + 13) AS title,
    CASE WHEN pg_temp.rnd(st.n, st.salt + 14) < 0.15 THEN NULL
        ELSE assignee_user.name
    END AS assignee,
    CASE WHEN pg_temp.rnd(st.n, st.salt + 16) < 0.3
        THEN pg_temp.pick(ARRAY['Builder RFI Desk', 'Ana Müller (Contractor)', 'Site Team', 'Certifier'],
            st.n, st.salt + 17)
        ELSE author_user.name
    END AS author,
    COALESCE(nb.last_number, 0)
        + row_number() OVER (PARTITION BY st.source_project_id ORDER BY st.created_at, st.n) AS issue_number
FROM stamped AS st
LEFT JOIN numbers_before AS nb ON nb.source_project_id = st.source_project_id
LEFT JOIN dbo.users AS assignee_user ON assignee_user.user_id = st.assignee_user_id
LEFT JOIN dbo.users AS author_user ON author_user.user_id = st.author_user_id;

INSERT INTO dbo.acc_issues (
    acc_project_id, acc_issue_id, issue_number, pm_project_id, project_name, title, status, priority,
    assigned_to, created_by, created_at, closed_at, updated_at, is_deleted, deleted_at
)
SELECT
    ni.source_project_id,
    md5('acc-issue-' || ni.n || '-' || p.seed)::uuid::text,
    ni.issue_number, ni.pm_project_id, ni.project_name, ni.title, ni.status, ni.priority,
    ni.assignee, ni.author, ni.created_at, ni.closed_at, ni.updated_at, ni.is_deleted, ni.deleted_at
FROM new_issue AS ni
CROSS JOIN params AS p
WHERE ni.tracker = 'ACC';

INSERT INTO dbo.revizto_issues (
    revizto_project_id, revizto_issue_id, issue_number, pm_project_id, project_name, title, status, priority,
    assignee, reporter, created_local, closed_local, updated_local, is_deleted, deleted_local
)
SELECT
    ni.source_project_id::bigint,
    9000000 + ni.n,
    ni.issue_number, ni.pm_project_id, ni.project_name, ni.title, ni.status, ni.priority,
    ni.assignee, ni.author,
    (ni.created_at AT TIME ZONE 'UTC') AT TIME ZONE p.source_tz,
    (ni.closed_at AT TIME ZONE 'UTC') AT TIME ZONE p.source_tz,
    (ni.updated_at AT TIME ZONE 'UTC') AT TIME ZONE p.source_tz,
    ni.is_deleted,
    (ni.deleted_at AT TIME ZONE 'UTC') AT TIME ZONE p.source_tz
FROM new_issue AS ni
CROSS JOIN params AS p
WHERE ni.tracker = 'Revizto';
