-- New projects of the demo source, with their aliases and tracker projects.
-- Params: project_count projects created in [window_start, window_end); is_seed adds tracker
-- projects that map to no PM project (their names match a project, a duplicate name, an alias, or
-- nothing), which only the initial seed creates. New projects have a NULL updated_at.

DROP TABLE IF EXISTS pg_temp.new_project;
CREATE TEMP TABLE new_project ON COMMIT DROP AS
WITH numbered AS (
    SELECT
        (SELECT COALESCE(max(project_id), 0) FROM dbo.projects) + g.k AS project_id,
        g.k
    FROM generate_series(1, (SELECT project_count FROM params)) AS g (k)
),

drafted AS (
    SELECT
        n.project_id,
        pg_temp.pick(ARRAY['Westmead', 'Parramatta', 'Liverpool', 'Footscray', 'Sunshine Coast', 'Fremantle',
            'Bankstown', 'Ipswich', 'Dandenong', 'Penrith', 'Gosford', 'Townsville', 'Bendigo', 'Ballarat',
            'Wollongong', 'Cairns', 'Darwin', 'Launceston', 'Mackay', 'Orange'], n.project_id, 1)
            || ' ' || pg_temp.pick(ARRAY['Hospital Redevelopment', 'Station Upgrade', 'School Expansion',
            'Office Tower', 'Residential Precinct', 'Water Treatment Plant', 'Bridge Replacement', 'Library',
            'Aquatic Centre', 'Logistics Hub', 'Courthouse', 'Stadium Refurbishment'], n.project_id, 2)
            || CASE WHEN pg_temp.rnd(n.project_id, 3) < 0.25 THEN ' Stage 2' ELSE '' END AS project_name,
        1 + floor(pg_temp.rnd(n.project_id, 4) * (SELECT count(*) FROM dbo.clients))::integer AS client_id,
        1 + floor(pg_temp.rnd(n.project_id, 5) * 8)::integer AS type_id,
        p.window_start + (p.window_end - p.window_start) * pg_temp.rnd(n.project_id, 6) AS created_at,
        p.window_end
    FROM numbered AS n
    CROSS JOIN params AS p
),

scheduled AS (
    SELECT
        d.*,
        d.created_at::date + floor(pg_temp.rnd(d.project_id, 7) * 60)::integer AS start_date,
        round((5000000 + pg_temp.rnd(d.project_id, 8) * 495000000)::numeric, -3) AS contract_value
    FROM drafted AS d
)

SELECT
    s.project_id,
    -- Every tenth project repeats its predecessor's name: project names are not unique.
    CASE
        WHEN s.project_id % 10 = 0 THEN COALESCE(
            (SELECT prev.project_name FROM dbo.projects AS prev WHERE prev.project_id = s.project_id - 1),
            lag(s.project_name) OVER (ORDER BY s.project_id),
            s.project_name
        )
        ELSE s.project_name
    END AS project_name,
    s.client_id,
    s.type_id,
    CASE
        WHEN s.start_date > s.window_end::date THEN 'Tender'
        WHEN s.start_date + 180 + floor(pg_temp.rnd(s.project_id, 9) * 1300)::integer < s.window_end::date
            THEN 'Completed'
        WHEN pg_temp.rnd(s.project_id, 10) < 0.1 THEN 'On Hold'
        ELSE 'Active'
    END AS status,
    pg_temp.pick(ARRAY['High', 'Medium', 'Medium', 'Low'], s.project_id, 11) AS priority,
    s.start_date,
    s.start_date + 180 + floor(pg_temp.rnd(s.project_id, 9) * 1300)::integer AS end_date,
    round((0.5 + pg_temp.rnd(s.project_id, 12) * 50)::numeric, 2) AS area_hectares,
    place.city,
    place.state,
    s.contract_value,
    round(s.contract_value * (0.02 + pg_temp.rnd(s.project_id, 13) * 0.06)::numeric, -2) AS agreed_fee,
    s.created_at
FROM scheduled AS s
CROSS JOIN LATERAL pg_temp.place(s.project_id, 14) AS place;

INSERT INTO dbo.projects (
    project_id, project_name, client_id, type_id, status, priority, start_date, end_date, area_hectares,
    city, state, contract_value, agreed_fee, created_at, updated_at
)
SELECT
    np.project_id, np.project_name, np.client_id, np.type_id, np.status, np.priority, np.start_date,
    np.end_date, np.area_hectares, np.city, np.state, np.contract_value, np.agreed_fee, np.created_at,
    -- The application sets updated_at only on some edits: NULL for new and never-touched projects.
    CASE
        WHEN p.is_seed AND pg_temp.rnd(np.project_id, 15) >= 0.35
            THEN np.created_at + (p.window_end - np.created_at) * pg_temp.rnd(np.project_id, 16)
    END
FROM new_project AS np
CROSS JOIN params AS p;

INSERT INTO dbo.project_aliases (pm_project_id, alias_name, created_at)
SELECT np.project_id, alias.alias_name, np.created_at + interval '1 day'
FROM new_project AS np
CROSS JOIN LATERAL (
    VALUES
        ('PRJ-' || lpad(np.project_id::text, 5, '0')),
        (CASE WHEN pg_temp.rnd(np.project_id, 17) < 0.5 THEN upper(np.project_name) END),
        (CASE WHEN pg_temp.rnd(np.project_id, 18) < 0.3
            THEN split_part(np.project_name, ' ', 1) || ' ' || np.city || ' #' || np.project_id END)
) AS alias (alias_name)
WHERE alias.alias_name IS NOT NULL;

-- Every project is in ACC; about 60 % are also in Revizto. Some trackers use an alias as the name.
INSERT INTO pmw_demo.tracker_project (source, source_project_id, tp_index, pm_project_id, project_name, created_at)
SELECT
    t.source,
    t.source_project_id,
    (SELECT COALESCE(max(tp.tp_index), -1) FROM pmw_demo.tracker_project AS tp WHERE tp.source = t.source)
        + row_number() OVER (PARTITION BY t.source ORDER BY t.source_project_id),
    t.pm_project_id,
    t.project_name,
    t.created_at
FROM (
    SELECT
        'ACC' AS source,
        'b.' || md5('acc-project-' || np.project_id || '-' || p.seed)::uuid::text AS source_project_id,
        np.project_id AS pm_project_id,
        CASE WHEN pg_temp.rnd(np.project_id, 19) < 0.2 THEN upper(np.project_name) ELSE np.project_name END
            AS project_name,
        np.created_at
    FROM new_project AS np
    CROSS JOIN params AS p
    UNION ALL
    SELECT 'Revizto', (700000 + np.project_id)::text, np.project_id, np.project_name, np.created_at
    FROM new_project AS np
    WHERE pg_temp.rnd(np.project_id, 20) < 0.6
    UNION ALL
    -- Unmapped tracker projects (seed only): pm_project_id NULL; the name is a unique project name,
    -- a duplicated one, an alias, or unknown, so name fallback has every case to handle.
    SELECT
        'ACC',
        'b.' || md5('acc-unmapped-' || g.k || '-' || p.seed)::uuid::text,
        NULL,
        CASE g.k % 4
            WHEN 1 THEN (SELECT min(pr.project_name) FROM dbo.projects AS pr
                WHERE pr.project_name IN (SELECT project_name FROM dbo.projects GROUP BY project_name
                    HAVING count(*) = 1))
            WHEN 2 THEN (SELECT min(pr.project_name) FROM dbo.projects AS pr
                WHERE pr.project_name IN (SELECT project_name FROM dbo.projects GROUP BY project_name
                    HAVING count(*) > 1))
            WHEN 3 THEN (SELECT min(a.alias_name) FROM dbo.project_aliases AS a WHERE a.alias_name LIKE 'PRJ-%')
            ELSE 'Internal BIM Standards ' || g.k
        END,
        p.window_start
    FROM params AS p
    CROSS JOIN generate_series(1, 2 + 2 * p.scale) AS g (k)
    WHERE p.is_seed
) AS t
WHERE t.project_name IS NOT NULL;
