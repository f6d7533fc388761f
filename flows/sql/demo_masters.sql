-- Master data of the demo source that exists once: project types, clients, users, the issue
-- category hierarchy and the status and priority maps. Run once by `pmw source seed`.
-- Reads pg_temp.params (scale, window_start, window_end) and pg_temp.rnd / pg_temp.pick.

INSERT INTO dbo.project_types (type_id, type_name)
SELECT ordinality, type_name
FROM unnest(ARRAY[
    'Commercial', 'Residential', 'Education', 'Health', 'Transport', 'Infrastructure', 'Industrial', 'Civic'
]) WITH ORDINALITY AS t (type_name, ordinality);

INSERT INTO dbo.clients (
    client_id, client_name, contact_name, contact_email, contact_phone, address, city, state, postcode, country
)
SELECT
    c.client_id,
    pg_temp.pick(ARRAY['Harbour', 'Northern', 'Riverside', 'Western', 'Coastal', 'Summit', 'Eastern', 'Metro',
        'Greenfield', 'Bayside', 'Southern', 'Highland', 'Parkes', 'Wollemi', 'Kurrajong'], c.client_id, 1)
        || ' ' || pg_temp.pick(ARRAY['City Council', 'Health District', 'Property Group', 'Developments',
        'Rail Authority', 'University', 'Water', 'Education Department', 'Infrastructure Trust', 'Ports'],
        c.client_id, 2),
    person.full_name,
    lower(replace(person.first_name, ' ', '')) || '.' || lower(replace(person.last_name, ' ', ''))
        || c.client_id || '@client.example.com',
    '+61 2 9' || lpad((floor(pg_temp.rnd(c.client_id, 3) * 1000000))::text, 6, '0'),
    (1 + floor(pg_temp.rnd(c.client_id, 4) * 400))::text || ' '
        || pg_temp.pick(ARRAY['George', 'King', 'Pitt', 'Collins', 'Queen', 'Hay', 'Market'], c.client_id, 5)
        || ' Street',
    place.city,
    place.state,
    place.postcode,
    CASE WHEN place.city = 'Auckland' THEN 'New Zealand' ELSE 'Australia' END
FROM generate_series(1, 8 * (SELECT scale FROM params)) AS c (client_id)
CROSS JOIN LATERAL pg_temp.person(c.client_id, 10) AS person
CROSS JOIN LATERAL pg_temp.place(c.client_id, 20) AS place;

INSERT INTO dbo.users (user_id, name, role, email, created_at)
SELECT
    u.user_id,
    person.full_name,
    pg_temp.pick(ARRAY['Project Manager', 'Design Manager', 'Engineer', 'Engineer', 'Reviewer',
        'Coordinator', 'Director'], u.user_id, 1),
    lower(replace(person.first_name, ' ', '')) || '.' || lower(replace(person.last_name, ' ', ''))
        || u.user_id || '@consultancy.example.com',
    p.window_start + (p.window_end - p.window_start) * pg_temp.rnd(u.user_id, 2) * 0.5
FROM generate_series(1, 40 * (SELECT scale FROM params)) AS u (user_id)
CROSS JOIN params AS p
CROSS JOIN LATERAL pg_temp.person(u.user_id, 30) AS person;

-- Three levels: discipline (6), type (4 per discipline), sub-type (3 per type). Names repeat across
-- levels and parents, as in the application.
WITH disciplines AS (
    SELECT ordinality AS d, name
    FROM unnest(ARRAY['Architecture', 'Structural', 'Mechanical', 'Electrical', 'Hydraulic', 'Civil'])
        WITH ORDINALITY AS t (name, ordinality)
),

types AS (
    SELECT ordinality AS t, name
    FROM unnest(ARRAY['Coordination', 'Compliance', 'Design Change', 'Constructability'])
        WITH ORDINALITY AS t (name, ordinality)
),

subtypes AS (
    SELECT ordinality AS s, name
    FROM unnest(ARRAY['Clash', 'Missing Information', 'General']) WITH ORDINALITY AS t (name, ordinality)
),

categories AS (
    SELECT d::integer AS category_id, name, NULL::integer AS parent_id, 1 AS category_level
    FROM disciplines
    UNION ALL
    SELECT (6 + (d - 1) * 4 + t)::integer, types.name, d::integer, 2
    FROM disciplines CROSS JOIN types
    UNION ALL
    SELECT (30 + ((d - 1) * 4 + t - 1) * 3 + s)::integer, subtypes.name, (6 + (d - 1) * 4 + t)::integer, 3
    FROM disciplines CROSS JOIN types CROSS JOIN subtypes
)

INSERT INTO dbo."IssueCategories" (
    category_id, category_name, parent_category_id, category_level, is_active, created_at, updated_at
)
SELECT category_id, name, parent_id, category_level, TRUE, p.window_start, p.window_start
FROM categories
CROSS JOIN params AS p
ORDER BY category_level, category_id;

INSERT INTO dbo.issue_status_map (source_system, raw_status, normalized_status, is_closed)
VALUES
    ('ACC', 'draft', 'Open', FALSE),
    ('ACC', 'open', 'Open', FALSE),
    ('ACC', 'pending', 'In Progress', FALSE),
    ('ACC', 'in_review', 'In Review', FALSE),
    ('ACC', 'closed', 'Closed', TRUE),
    ('ACC', 'void', 'Void', TRUE),
    ('Revizto', 'Open', 'Open', FALSE),
    ('Revizto', 'In progress', 'In Progress', FALSE),
    ('Revizto', 'Ready to check', 'In Review', FALSE),
    ('Revizto', 'Solved', 'Resolved', TRUE),
    ('Revizto', 'Closed', 'Closed', TRUE);

-- Deliberately incomplete: Revizto's L3/L4 and the 'none'/'n/a' spellings are not mapped, so the
-- business-rules fallback (Minor/L3 -> Medium, Trivial/L4 -> Low, none -> NULL) is exercised.
INSERT INTO dbo.issue_priority_map (source_system, raw_priority, normalized_priority)
VALUES
    ('ACC', 'Blocker', 'Critical'),
    ('ACC', 'Critical', 'Critical'),
    ('ACC', 'Major', 'High'),
    ('ACC', 'Minor', 'Medium'),
    ('ACC', 'Trivial', 'Low'),
    ('Revizto', 'L1 - Critical', 'Critical'),
    ('Revizto', 'L2 - High', 'High');
