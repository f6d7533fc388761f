-- Session-local helpers of the demo generator (schema pg_temp: gone when the session ends).
-- Randomness is a hash of (row number, salt, seed), not random(): the same seed gives the same data
-- whatever the plan, parallelism or row order. __SEED__ is replaced by the integer seed.

CREATE OR REPLACE FUNCTION pg_temp.rnd(n bigint, salt integer) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT ((hashint8extended(n, salt::bigint * 1000003 + __SEED__) >> 11) & 4503599627370495)::double precision
        / 4503599627370496.0
$$;

CREATE OR REPLACE FUNCTION pg_temp.pick(choices text[], n bigint, salt integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT choices[1 + floor(pg_temp.rnd(n, salt) * cardinality(choices))::integer]
$$;

CREATE OR REPLACE FUNCTION pg_temp.person(n bigint, salt integer)
RETURNS TABLE (first_name text, last_name text, full_name text)
LANGUAGE sql IMMUTABLE
AS $$
    SELECT f, l, f || ' ' || l
    FROM (
        SELECT
            pg_temp.pick(ARRAY['Olivia', 'Jack', 'Charlotte', 'Noah', 'Amelia', 'William', 'Mia', 'Thomas',
                'Isla', 'James', 'Chloé', 'José', 'Zoë', 'Mei', 'Arjun', 'Siobhán', 'Łukasz', 'Aroha', 'Nguyễn',
                'Fatima', 'Henry', 'Grace', 'Lachlan', 'Ruby'], n, salt) AS f,
            pg_temp.pick(ARRAY['Smith', 'Jones', 'Williams', 'Brown', 'Wilson', 'Taylor', 'Nguyen', 'Chen',
                'Patel', 'O''Brien', 'Müller', 'García', 'Kowalski', 'Singh', 'Anderson', 'Martin', 'Thompson',
                'White', 'Ngata', 'Rossi', 'Kelly', 'Walker'], n, salt + 1) AS l
    ) AS names
$$;

CREATE OR REPLACE FUNCTION pg_temp.place(n bigint, salt integer)
RETURNS TABLE (city text, state text, postcode text)
LANGUAGE sql IMMUTABLE
AS $$
    SELECT places.city, places.state, places.postcode
    FROM (VALUES
        (0, 'Sydney', 'NSW', '2000'), (1, 'Parramatta', 'NSW', '2150'), (2, 'Newcastle', 'NSW', '2300'),
        (3, 'Melbourne', 'VIC', '3000'), (4, 'Geelong', 'VIC', '3220'), (5, 'Brisbane', 'QLD', '4000'),
        (6, 'Gold Coast', 'QLD', '4217'), (7, 'Perth', 'WA', '6000'), (8, 'Adelaide', 'SA', '5000'),
        (9, 'Hobart', 'TAS', '7000'), (10, 'Canberra', 'ACT', '2600'), (11, 'Auckland', 'AKL', '1010')
    ) AS places (k, city, state, postcode)
    WHERE places.k = floor(pg_temp.rnd(n, salt) * 12)::integer
$$;
