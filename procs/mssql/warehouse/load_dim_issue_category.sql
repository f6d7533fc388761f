-- warehouse.load_dim_issue_category
-- Purpose:    SCD2 history of the three-level issue category hierarchy (discipline, type,
--             sub-type), incremental on updated_at. discipline_category_id is the level-1 ancestor,
--             found through staged rows or, for parents not changed in this run, the dimension.
--             T-SQL: #incoming is created here, not by a helper procedure, because a temporary
--             table lives only as long as the procedure that created it.
-- Parameters: @p_run_id: rows of stg.issue_categories staged by this run are loaded; @p_as_of: the run's as-of
--             instant.
-- Returns:    one row (rows_inserted, rows_updated, rows_closed, rows_deleted) for the run log.
-- Reads:      stg.issue_categories, dim.issue_category. Writes: dim.issue_category.
CREATE OR ALTER PROCEDURE warehouse.load_dim_issue_category
    @p_run_id BIGINT,
    @p_as_of DATETIMEOFFSET
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    DECLARE @rows_inserted BIGINT = 0;
    DECLARE @rows_updated BIGINT = 0;
    DECLARE @rows_closed BIGINT = 0;
    DECLARE @rows_deleted BIGINT = 0;

    SELECT TOP (0)
        category_id, category_name, parent_category_id, category_level, discipline_category_id, is_active,
        created_at, is_deleted,
        CAST(NULL AS DATETIMEOFFSET) AS change_at,
        CAST(NULL AS DATETIMEOFFSET) AS first_seen_from
    INTO #incoming
    FROM dim.issue_category;

    WITH staged AS (
        SELECT category_id, category_name, parent_category_id, category_level, is_active, created_at, updated_at,
            time_zone
        FROM stg.issue_categories
        WHERE run_id = @p_run_id
    ),

    known_parents AS (
        SELECT category_id, parent_category_id FROM staged
        UNION ALL
        SELECT d.category_id, d.parent_category_id
        FROM dim.issue_category AS d
        WHERE d.is_current = 1 AND NOT EXISTS (SELECT 1 FROM staged AS s WHERE s.category_id = d.category_id)
    )

    INSERT INTO #incoming (
        category_id, category_name, parent_category_id, category_level, discipline_category_id, is_active,
        created_at, is_deleted, change_at, first_seen_from
    )
    SELECT
        s.category_id, s.category_name, s.parent_category_id, s.category_level,
        CASE s.category_level WHEN 1 THEN s.category_id WHEN 2 THEN s.parent_category_id
            ELSE parent.parent_category_id END,
        s.is_active, s.created_at AT TIME ZONE s.time_zone AT TIME ZONE 'UTC', CAST(0 AS BIT), s.updated_at AT TIME ZONE s.time_zone AT TIME ZONE 'UTC',
        s.created_at AT TIME ZONE s.time_zone AT TIME ZONE 'UTC'
    FROM staged AS s
    LEFT JOIN known_parents AS parent ON parent.category_id = s.parent_category_id;

    EXEC warehouse.merge_scd2
        @p_dimension = N'issue_category',
        @p_key_columns = N'category_id',
        @p_full_compare = 0,
        @p_as_of = @p_as_of,
        @p_run_id = @p_run_id,
        @rows_inserted = @rows_inserted OUTPUT,
        @rows_updated = @rows_updated OUTPUT,
        @rows_closed = @rows_closed OUTPUT,
        @rows_deleted = @rows_deleted OUTPUT;

    SELECT
        @rows_inserted AS rows_inserted,
        @rows_updated AS rows_updated,
        @rows_closed AS rows_closed,
        @rows_deleted AS rows_deleted;
END
