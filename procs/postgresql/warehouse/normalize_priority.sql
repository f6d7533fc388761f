-- warehouse.normalize_priority
-- Purpose:    business-rules.md's fallback for a raw priority the priority map does not have:
--             Blocker / Critical / L1 -> Critical, Major / L2 -> High, Minor / L3 -> Medium,
--             Trivial / L4 -> Low; none / n/a / unknown (and anything else) -> NULL. Case and
--             surrounding spaces are ignored; "L3 - Medium" counts as L3.
-- Parameters: p_raw: the tracker's spelling. Returns: Critical, High, Medium, Low or NULL.
CREATE OR REPLACE FUNCTION warehouse.normalize_priority(p_raw text)
RETURNS varchar(20)
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN v IN ('blocker', 'critical') OR v LIKE 'l1%' THEN 'Critical'
        WHEN v = 'major' OR v LIKE 'l2%' THEN 'High'
        WHEN v = 'minor' OR v LIKE 'l3%' THEN 'Medium'
        WHEN v = 'trivial' OR v LIKE 'l4%' THEN 'Low'
    END
    FROM (SELECT lower(btrim(p_raw)) AS v) AS raw
$$;
