-- warehouse.load_dim_issue_analytics
-- Purpose:    SCD2 history of the text analytics of each issue, incremental on processed_at
--             (the source server's local time, converted to UTC). Every re-processing that changes
--             a value is a new version.
-- Parameters: p_run_id: rows of stg.processed_issues staged by this run are loaded; p_as_of: the run's as-of
--             instant. rows_inserted, rows_updated, rows_closed, rows_deleted (INOUT, leave out):
--             counts from warehouse.merge_scd2 for the run log.
-- Reads:      stg.processed_issues. Writes: dim.issue_analytics.
CREATE OR REPLACE PROCEDURE warehouse.load_dim_issue_analytics(
    p_run_id bigint,
    p_as_of timestamptz,
    INOUT rows_inserted bigint DEFAULT 0,
    INOUT rows_updated bigint DEFAULT 0,
    INOUT rows_closed bigint DEFAULT 0,
    INOUT rows_deleted bigint DEFAULT 0
)
LANGUAGE plpgsql
-- its own search_path: the caller's (dim ahead of pg_catalog, say) cannot change what a name means
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CALL warehouse.prepare_incoming('issue_analytics');

    INSERT INTO pg_temp.incoming (
        source_system, source_issue_id, urgency_score, complexity_score, sentiment_score,
        categorization_confidence, discipline_category_id, primary_category_id, secondary_category_id,
        resolution_days, is_recurring, comment_count, processed_at, processing_version, is_deleted, change_at,
        first_seen_from
    )
    SELECT
        source, source_issue_id, urgency_score, complexity_score, sentiment_score, categorization_confidence,
        discipline_category_id, primary_category_id, secondary_category_id, resolution_days, is_recurring,
        comment_count, processed_at AT TIME ZONE time_zone, processing_version, FALSE,
        processed_at AT TIME ZONE time_zone, processed_at AT TIME ZONE time_zone
    FROM stg.processed_issues
    WHERE run_id = p_run_id;

    CALL warehouse.merge_scd2(
        'issue_analytics', ARRAY['source_system', 'source_issue_id'], FALSE, p_as_of, p_run_id, rows_inserted, rows_updated, rows_closed, rows_deleted
    );
END;
$$;
