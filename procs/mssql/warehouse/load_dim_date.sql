-- warehouse.load_dim_date
-- Purpose:    fill dim.date with one row per day from @p_start_date to @p_end_date (inclusive):
--             calendar, ISO week (Monday start), weekend (Saturday, Sunday), fiscal year (starts on
--             the 1st of @p_fiscal_year_start_month, labelled by the calendar year in which it ends)
--             and fiscal periods (fiscal month 1-12 and fiscal quarter 1-4 within that year).
--             Idempotent: new days are inserted; a day whose fiscal attributes differ (after the
--             fiscal start month changed) is updated in place; identical days are left alone.
--             Independent of session settings: the weekday is counted from a known Monday
--             (1900-01-01) instead of DATEPART(WEEKDAY) (DATEFIRST), names come from CHOOSE instead
--             of DATENAME (LANGUAGE), and labels are built without FORMAT (culture).
-- Parameters: @p_start_date, @p_end_date: the range; @p_fiscal_year_start_month: 1-12.
-- Returns:    one row (rows_inserted, rows_updated) for the run log.
-- Reads:      nothing.
-- Writes:     dim.date.
CREATE OR ALTER PROCEDURE warehouse.load_dim_date
    @p_start_date DATE,
    @p_end_date DATE,
    @p_fiscal_year_start_month INT
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    IF @p_start_date IS NULL OR @p_end_date IS NULL OR @p_end_date < @p_start_date
        THROW 50001, N'load_dim_date: invalid date range. Pass @p_start_date <= @p_end_date, both not NULL.', 1;
    IF @p_start_date < '19000101' OR @p_end_date > '99981231'
        THROW 50002, N'load_dim_date: the range must lie within 1900-01-01 .. 9998-12-31.', 1;
    IF @p_fiscal_year_start_month IS NULL OR @p_fiscal_year_start_month NOT BETWEEN 1 AND 12
        THROW 50003, N'load_dim_date: @p_fiscal_year_start_month must be 1 (January) to 12 (December).', 1;

    DECLARE @day_count INT = DATEDIFF(DAY, @p_start_date, @p_end_date) + 1;
    DECLARE @changes TABLE (change_action NVARCHAR(10) NOT NULL);

    WITH digits AS (
        SELECT digit FROM (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS d (digit)
    ),

    numbers AS (
        SELECT TOP (@day_count)
            ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) - 1 AS offset_days
        FROM digits AS d1
        CROSS JOIN digits AS d2
        CROSS JOIN digits AS d3
        CROSS JOIN digits AS d4
        CROSS JOIN digits AS d5
        CROSS JOIN digits AS d6
        CROSS JOIN digits AS d7
    ),

    days AS (
        SELECT DATEADD(DAY, offset_days, @p_start_date) AS full_date
        FROM numbers
    ),

    day_parts AS (
        SELECT
            full_date,
            DATEDIFF(DAY, CAST('19000101' AS DATE), full_date) % 7 + 1 AS day_of_week,
            MONTH(full_date) AS month_number,
            YEAR(full_date) AS calendar_year,
            DATEPART(ISO_WEEK, full_date) AS iso_week
        FROM days
    ),

    calendar AS (
        SELECT
            calendar_year * 10000 + month_number * 100 + DAY(full_date) AS date_key,
            full_date,
            day_of_week,
            CHOOSE(
                day_of_week, N'Monday', N'Tuesday', N'Wednesday', N'Thursday', N'Friday', N'Saturday', N'Sunday'
            ) AS day_name,
            DAY(full_date) AS day_of_month,
            DATEPART(DAYOFYEAR, full_date) AS day_of_year,
            CAST(CASE WHEN day_of_week IN (6, 7) THEN 1 ELSE 0 END AS BIT) AS is_weekend,
            iso_week,
            YEAR(DATEADD(DAY, 4 - day_of_week, full_date)) AS iso_year,
            DATEADD(DAY, 1 - day_of_week, full_date) AS week_start_date,
            month_number,
            CHOOSE(
                month_number, N'January', N'February', N'March', N'April', N'May', N'June', N'July',
                N'August', N'September', N'October', N'November', N'December'
            ) AS month_name,
            DATEFROMPARTS(calendar_year, month_number, 1) AS month_start_date,
            EOMONTH(full_date) AS month_end_date,
            CONVERT(CHAR(7), full_date, 126) AS year_month,
            (month_number - 1) / 3 + 1 AS quarter,
            calendar_year,
            calendar_year + CASE
                WHEN @p_fiscal_year_start_month > 1 AND month_number >= @p_fiscal_year_start_month THEN 1
                ELSE 0
            END AS fiscal_year,
            (month_number - @p_fiscal_year_start_month + 12) % 12 + 1 AS fiscal_month_number
        FROM day_parts
    ),

    source_rows AS (
        SELECT
            date_key,
            full_date,
            day_of_week,
            day_name,
            day_of_month,
            day_of_year,
            is_weekend,
            iso_week,
            iso_year,
            CONCAT(iso_year, N'-W', RIGHT(CONCAT(N'0', iso_week), 2)) AS iso_week_label,
            week_start_date,
            month_number,
            month_name,
            month_start_date,
            month_end_date,
            year_month,
            quarter,
            calendar_year,
            fiscal_year,
            CONCAT(N'FY', fiscal_year) AS fiscal_year_label,
            DATEFROMPARTS(
                fiscal_year - CASE WHEN @p_fiscal_year_start_month > 1 THEN 1 ELSE 0 END,
                @p_fiscal_year_start_month,
                1
            ) AS fiscal_year_start_date,
            fiscal_month_number,
            (fiscal_month_number - 1) / 3 + 1 AS fiscal_quarter
        FROM calendar
    )

    MERGE dim.date WITH (HOLDLOCK) AS target
    USING source_rows AS source
        ON target.date_key = source.date_key
    WHEN MATCHED AND EXISTS (
        SELECT source.fiscal_year, source.fiscal_year_start_date, source.fiscal_month_number
        EXCEPT
        SELECT target.fiscal_year, target.fiscal_year_start_date, target.fiscal_month_number
    ) THEN UPDATE SET
        fiscal_year = source.fiscal_year,
        fiscal_year_label = source.fiscal_year_label,
        fiscal_year_start_date = source.fiscal_year_start_date,
        fiscal_month_number = source.fiscal_month_number,
        fiscal_quarter = source.fiscal_quarter
    WHEN NOT MATCHED BY TARGET THEN INSERT (
        date_key, full_date, day_of_week, day_name, day_of_month, day_of_year, is_weekend,
        iso_week, iso_year, iso_week_label, week_start_date, month_number, month_name,
        month_start_date, month_end_date, year_month, quarter, calendar_year, fiscal_year,
        fiscal_year_label, fiscal_year_start_date, fiscal_month_number, fiscal_quarter
    ) VALUES (
        source.date_key, source.full_date, source.day_of_week, source.day_name, source.day_of_month,
        source.day_of_year, source.is_weekend, source.iso_week, source.iso_year, source.iso_week_label,
        source.week_start_date, source.month_number, source.month_name, source.month_start_date,
        source.month_end_date, source.year_month, source.quarter, source.calendar_year, source.fiscal_year,
        source.fiscal_year_label, source.fiscal_year_start_date, source.fiscal_month_number,
        source.fiscal_quarter
    )
    OUTPUT $action INTO @changes (change_action);

    SELECT
        CAST(COUNT(CASE WHEN change_action = N'INSERT' THEN 1 END) AS BIGINT) AS rows_inserted,
        CAST(COUNT(CASE WHEN change_action = N'UPDATE' THEN 1 END) AS BIGINT) AS rows_updated
    FROM @changes;
END
