-- Text analytics for issues the analytics job has not processed yet: about 75 % of issues are
-- processed within 36 hours of creation (the rest never are). Seeded history includes issues
-- re-processed up to four times (processing_version > 1, later processed_at). processed_at is the
-- source server's local time.

INSERT INTO dbo."ProcessedIssues" (
    source, source_issue_id, urgency_score, complexity_score, sentiment_score, categorization_confidence,
    discipline_category_id, primary_category_id, secondary_category_id, resolution_days, is_recurring,
    comment_count, processed_at, processing_version
)
WITH candidates AS (
    SELECT
        i.source,
        i.source_issue_id,
        hashtext(i.source || i.source_issue_id)::bigint AS n,
        CASE WHEN i.source = 'ACC' THEN i.created_at
            ELSE (i.created_at AT TIME ZONE p.source_tz) AT TIME ZONE 'UTC' END AS created_utc,
        i.created_at::date AS created_date,
        i.closed_at::date AS closed_date,
        p.window_end,
        p.source_tz,
        p.is_seed
    FROM dbo."vw_ProjectManagement_AllIssues" AS i
    CROSS JOIN params AS p
    WHERE NOT i.is_deleted
        AND NOT EXISTS (
            SELECT 1 FROM dbo."ProcessedIssues" AS done
            WHERE done.source = i.source AND done.source_issue_id = i.source_issue_id
        )
),

chosen AS (
    SELECT
        c.*,
        c.created_utc + pg_temp.rnd(c.n, 50) * interval '36 hours' AS first_processed_utc,
        CASE WHEN c.is_seed THEN 1 + floor(power(pg_temp.rnd(c.n, 51), 3) * 4)::integer ELSE 1 END
            AS processing_version,
        1 + floor(pg_temp.rnd(c.n, 52) * 6)::integer AS discipline_id,
        floor(pg_temp.rnd(c.n, 53) * 4)::integer AS type_offset,
        floor(pg_temp.rnd(c.n, 54) * 3)::integer AS subtype_offset,
        pg_temp.rnd(c.n, 55) < 0.05 AS is_uncategorised
    FROM candidates AS c
    WHERE pg_temp.rnd(c.n, 56) < 0.75
        AND c.created_utc + pg_temp.rnd(c.n, 50) * interval '36 hours' <= c.window_end
)

SELECT
    ch.source,
    ch.source_issue_id,
    round(pg_temp.rnd(ch.n, 57)::numeric, 4),
    round(pg_temp.rnd(ch.n, 58)::numeric, 4),
    round((pg_temp.rnd(ch.n, 59) * 2 - 1)::numeric, 4),
    round((0.4 + pg_temp.rnd(ch.n, 60) * 0.6)::numeric, 4),
    CASE WHEN NOT ch.is_uncategorised THEN ch.discipline_id END,
    CASE WHEN NOT ch.is_uncategorised THEN 6 + (ch.discipline_id - 1) * 4 + ch.type_offset + 1 END,
    CASE WHEN NOT ch.is_uncategorised
        THEN 30 + ((ch.discipline_id - 1) * 4 + ch.type_offset) * 3 + ch.subtype_offset + 1 END,
    ch.closed_date - ch.created_date,
    pg_temp.rnd(ch.n, 61) < 0.07,
    floor(power(pg_temp.rnd(ch.n, 62), 2) * 40)::integer,
    (LEAST(ch.window_end, ch.first_processed_utc + (ch.processing_version - 1) * interval '3 days')
        AT TIME ZONE 'UTC') AT TIME ZONE ch.source_tz,
    ch.processing_version
FROM chosen AS ch;
