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
-- One expression, no FROM: PostgreSQL inlines it into the calling query (a per-row function call
-- measured 5 s per million rows).
AS $$
    SELECT CASE
        WHEN lower(btrim(p_raw)) IN ('blocker', 'critical') OR lower(btrim(p_raw)) LIKE 'l1%' THEN 'Critical'
        WHEN lower(btrim(p_raw)) = 'major' OR lower(btrim(p_raw)) LIKE 'l2%' THEN 'High'
        WHEN lower(btrim(p_raw)) = 'minor' OR lower(btrim(p_raw)) LIKE 'l3%' THEN 'Medium'
        WHEN lower(btrim(p_raw)) = 'trivial' OR lower(btrim(p_raw)) LIKE 'l4%' THEN 'Low'
    END
$$;
