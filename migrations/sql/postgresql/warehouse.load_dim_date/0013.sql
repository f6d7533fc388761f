-- warehouse.load_dim_date
-- Purpose:    fill dim.date with one row per day from p_start_date to p_end_date (inclusive):
--             calendar, ISO week (Monday start), weekend (Saturday, Sunday), fiscal year (starts on
--             the 1st of p_fiscal_year_start_month, labelled by the calendar year in which it ends)
--             and fiscal periods (fiscal month 1-12 and fiscal quarter 1-4 within that year).
--             Idempotent: new days are inserted; a day whose attributes differ (for example after the
--             fiscal start month changed) is updated in place; identical days are left alone.
--             Names come from arrays and weekdays from ISODOW, so no session setting (lc_time,
--             DateStyle, TimeZone) changes the result.
-- Parameters: p_start_date, p_end_date: the range; p_fiscal_year_start_month: 1-12.
--             rows_inserted, rows_updated (INOUT, leave out when calling): counts for the run log.
-- Reads:      nothing.
-- Writes:     dim.date.
CREATE OR REPLACE PROCEDURE warehouse.load_dim_date(
    p_start_date date,
    p_end_date date,
    p_fiscal_year_start_month integer,
    INOUT rows_inserted bigint DEFAULT NULL,
    INOUT rows_updated bigint DEFAULT NULL
)
LANGUAGE plpgsql
-- its own search_path: the caller's (dim ahead of pg_catalog, say) cannot change what a name means
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_start_date IS NULL OR p_end_date IS NULL OR p_end_date < p_start_date THEN
        RAISE EXCEPTION 'load_dim_date: invalid range % to %', p_start_date, p_end_date
            USING HINT = 'Pass p_start_date <= p_end_date, both not NULL.';
    END IF;
    IF p_start_date < DATE '1900-01-01' OR p_end_date > DATE '9998-12-31' THEN
        RAISE EXCEPTION 'load_dim_date: range % to % is outside 1900-01-01 .. 9998-12-31', p_start_date, p_end_date
            USING HINT = 'Load only the years the warehouse needs.';
    END IF;
    IF p_fiscal_year_start_month IS NULL OR p_fiscal_year_start_month NOT BETWEEN 1 AND 12 THEN
        RAISE EXCEPTION 'load_dim_date: fiscal year start month % is not a month number', p_fiscal_year_start_month
            USING HINT = 'Pass 1 (January) to 12 (December); business-rules.md defaults to 7 (July).';
    END IF;

    WITH days AS (
        SELECT p_start_date + offset_days AS full_date
        FROM generate_series(0, p_end_date - p_start_date) AS series (offset_days)
    ),

    day_parts AS (
        SELECT
            full_date,
            EXTRACT(ISODOW FROM full_date)::smallint AS day_of_week,
            EXTRACT(MONTH FROM full_date)::smallint AS month_number,
            EXTRACT(YEAR FROM full_date)::smallint AS calendar_year,
            EXTRACT(WEEK FROM full_date)::smallint AS iso_week,
            EXTRACT(ISOYEAR FROM full_date)::smallint AS iso_year
        FROM days
    ),

    calendar AS (
        SELECT
            (calendar_year * 10000 + month_number * 100 + EXTRACT(DAY FROM full_date))::integer AS date_key,
            full_date,
            day_of_week,
            (ARRAY['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'])[day_of_week]
                AS day_name,
            EXTRACT(DAY FROM full_date)::smallint AS day_of_month,
            EXTRACT(DOY FROM full_date)::smallint AS day_of_year,
            day_of_week IN (6, 7) AS is_weekend,
            iso_week,
            iso_year,
            iso_year::text || '-W' || lpad(iso_week::text, 2, '0') AS iso_week_label,
            full_date - (day_of_week - 1) AS week_start_date,
            month_number,
            (ARRAY['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September',
                'October', 'November', 'December'])[month_number] AS month_name,
            make_date(calendar_year, month_number, 1) AS month_start_date,
            (make_date(calendar_year, month_number, 1) + INTERVAL '1 month' - INTERVAL '1 day')::date
                AS month_end_date,
            calendar_year::text || '-' || lpad(month_number::text, 2, '0') AS year_month,
            ((month_number - 1) / 3 + 1)::smallint AS quarter,
            calendar_year,
            (calendar_year + CASE
                WHEN p_fiscal_year_start_month > 1 AND month_number >= p_fiscal_year_start_month THEN 1
                ELSE 0
            END)::smallint AS fiscal_year,
            ((month_number - p_fiscal_year_start_month + 12) % 12 + 1)::smallint AS fiscal_month_number
        FROM day_parts
    ),

    upserted AS (
        INSERT INTO dim.date (
            date_key, full_date, day_of_week, day_name, day_of_month, day_of_year, is_weekend,
            iso_week, iso_year, iso_week_label, week_start_date, month_number, month_name,
            month_start_date, month_end_date, year_month, quarter, calendar_year, fiscal_year,
            fiscal_year_label, fiscal_year_start_date, fiscal_month_number, fiscal_quarter
        )
        SELECT
            date_key, full_date, day_of_week, day_name, day_of_month, day_of_year, is_weekend,
            iso_week, iso_year, iso_week_label, week_start_date, month_number, month_name,
            month_start_date, month_end_date, year_month, quarter, calendar_year, fiscal_year,
            'FY' || fiscal_year::text,
            make_date(
                fiscal_year - CASE WHEN p_fiscal_year_start_month > 1 THEN 1 ELSE 0 END,
                p_fiscal_year_start_month,
                1
            ),
            fiscal_month_number,
            ((fiscal_month_number - 1) / 3 + 1)::smallint
        FROM calendar
        ON CONFLICT (date_key) DO UPDATE SET
            fiscal_year = excluded.fiscal_year,
            fiscal_year_label = excluded.fiscal_year_label,
            fiscal_year_start_date = excluded.fiscal_year_start_date,
            fiscal_month_number = excluded.fiscal_month_number,
            fiscal_quarter = excluded.fiscal_quarter
        WHERE (dim.date.fiscal_year, dim.date.fiscal_year_start_date, dim.date.fiscal_month_number)
            IS DISTINCT FROM (excluded.fiscal_year, excluded.fiscal_year_start_date, excluded.fiscal_month_number)
        RETURNING (xmax = 0) AS was_inserted
    )

    SELECT
        count(*) FILTER (WHERE was_inserted),
        count(*) FILTER (WHERE NOT was_inserted)
    INTO rows_inserted, rows_updated
    FROM upserted;
END;
$$;
