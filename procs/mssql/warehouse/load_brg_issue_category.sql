-- warehouse.load_brg_issue_category
-- Purpose:    the issue <-> category bridge (same rules as the PostgreSQL version): for each issue with text
--             analytics, one row per role (discipline, primary, secondary) naming its current category and
--             the category's current dim.issue_category version (-1 when unknown). The rows of issues whose
--             analytics changed since the last bridge run are replaced, and so are those of issues with a
--             version written since (a new key: an issue moved to another tracker project) and those
--             pointing at a category version no longer current (a category renamed).
-- Parameters: @p_run_id; @p_since_run_id: the last run whose fact phase committed (NULL: never),
--             given by the run log; @p_as_of, @p_time_zone (unused; the common fact signature).
-- Returns:    one row (rows_read, rows_inserted, rows_deleted) for the run log.
-- Reads:      dim.issue_analytics, dim.issue, dim.issue_key, dim.issue_category, brg.issue_category.
--             Writes: brg.issue_category.
CREATE OR ALTER PROCEDURE warehouse.load_brg_issue_category
    @p_run_id BIGINT,
    @p_as_of DATETIMEOFFSET,
    @p_time_zone NVARCHAR(64),
    @p_since_run_id BIGINT = NULL
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    DECLARE @rows_read BIGINT = 0;
    DECLARE @rows_inserted BIGINT = 0;
    DECLARE @rows_deleted BIGINT = 0;
    DECLARE @last_run BIGINT = @p_since_run_id;

    -- the issues to derive again (all of them the first time): analytics changed, an issue version written
    -- since (an issue moved to another tracker project is a new key with old analytics), or rows pointing
    -- at a category version no longer current (a category renamed)
    SELECT k.issue_key
    INTO #changed_issue
    FROM dim.issue_analytics AS a
    INNER JOIN dim.issue_key AS k ON k.source_system = a.source_system AND k.source_issue_id = a.source_issue_id
    WHERE a.is_current = 1 AND a.issue_analytics_sk <> -1 AND a.run_id > @last_run
    UNION
    SELECT k.issue_key
    FROM dim.issue AS d
    INNER JOIN dim.issue_key AS k
        ON k.source_system = d.source_system AND k.source_project_id = d.source_project_id
        AND k.source_issue_id = d.source_issue_id
    WHERE d.issue_sk <> -1 AND d.run_id > @last_run
    UNION
    SELECT b.issue_key
    FROM dim.issue_category AS c
    INNER JOIN brg.issue_category AS b ON b.category_id = c.category_id
    WHERE c.is_current = 1 AND c.run_id > @last_run AND b.issue_category_sk <> c.issue_category_sk;

    SELECT k.issue_key, a.is_deleted, a.discipline_category_id, a.primary_category_id, a.secondary_category_id
    INTO #bridge_issue
    FROM dim.issue_analytics AS a
    INNER JOIN dim.issue_key AS k ON k.source_system = a.source_system AND k.source_issue_id = a.source_issue_id
    WHERE a.is_current = 1 AND a.issue_analytics_sk <> -1
        AND (@last_run IS NULL OR k.issue_key IN (SELECT c.issue_key FROM #changed_issue AS c));

    SELECT b.issue_key, CAST(r.category_role AS NVARCHAR(12)) AS category_role, r.category_id,
        COALESCE(cat.issue_category_sk, -1) AS issue_category_sk
    INTO #bridge_new
    FROM #bridge_issue AS b
    CROSS APPLY (
        VALUES (N'discipline', b.discipline_category_id), (N'primary', b.primary_category_id),
            (N'secondary', b.secondary_category_id)
    ) AS r (category_role, category_id)
    LEFT JOIN dim.issue_category AS cat ON cat.category_id = r.category_id AND cat.is_current = 1
    WHERE b.is_deleted = 0 AND r.category_id IS NOT NULL;
    SET @rows_read = (SELECT COUNT(*) FROM #bridge_new);

    DELETE b
    FROM brg.issue_category AS b
    WHERE b.issue_key IN (SELECT issue_key FROM #bridge_issue)
        AND NOT EXISTS (
            SELECT 1 FROM #bridge_new AS n
            WHERE n.issue_key = b.issue_key AND n.category_role = b.category_role AND n.category_id = b.category_id
                AND n.issue_category_sk = b.issue_category_sk
        );
    SET @rows_deleted = @@ROWCOUNT;

    INSERT INTO brg.issue_category (issue_key, category_role, category_id, issue_category_sk, run_id)
    SELECT DISTINCT n.issue_key, n.category_role, n.category_id, n.issue_category_sk, @p_run_id
    FROM #bridge_new AS n
    WHERE NOT EXISTS (
            SELECT 1 FROM brg.issue_category AS b
            WHERE b.issue_key = n.issue_key AND b.category_role = n.category_role
        );
    SET @rows_inserted = @@ROWCOUNT;

    SELECT @rows_read AS rows_read, @rows_inserted AS rows_inserted, @rows_deleted AS rows_deleted;
END;
