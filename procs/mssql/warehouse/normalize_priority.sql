-- warehouse.normalize_priority
-- Purpose:    business-rules.md's fallback for a raw priority the priority map does not have:
--             Blocker / Critical / L1 -> Critical, Major / L2 -> High, Minor / L3 -> Medium,
--             Trivial / L4 -> Low; none / n/a / unknown (and anything else) -> NULL. Case and
--             surrounding spaces are ignored; "L3 - Medium" counts as L3.
-- Parameters: @p_raw: the tracker's spelling. Returns: Critical, High, Medium, Low or NULL.
CREATE OR ALTER FUNCTION warehouse.normalize_priority(@p_raw NVARCHAR(50))
RETURNS NVARCHAR(20)
WITH SCHEMABINDING
AS
BEGIN
    DECLARE @v NVARCHAR(50) = LOWER(LTRIM(RTRIM(@p_raw)));
    RETURN CASE
        WHEN @v IN (N'blocker', N'critical') OR @v LIKE N'l1%' THEN N'Critical'
        WHEN @v = N'major' OR @v LIKE N'l2%' THEN N'High'
        WHEN @v = N'minor' OR @v LIKE N'l3%' THEN N'Medium'
        WHEN @v = N'trivial' OR @v LIKE N'l4%' THEN N'Low'
    END;
END;
