"""warehouse.load_dim_date against business-rules.md: calendar, ISO weeks, fiscal year and periods."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
COLUMNS = (
    "date_key, full_date, day_of_week, day_name, day_of_month, day_of_year, is_weekend, iso_week, iso_year, "
    "iso_week_label, week_start_date, month_number, month_name, month_start_date, month_end_date, year_month, "
    "quarter, calendar_year, fiscal_year, fiscal_year_label, fiscal_year_start_date, fiscal_month_number, "
    "fiscal_quarter"
)


def expected_row(day: date, fiscal_start: int) -> tuple[object, ...]:
    """The business rules, computed independently in Python."""
    iso_year, iso_week, iso_dow = day.isocalendar()
    fiscal_year = day.year + (1 if fiscal_start > 1 and day.month >= fiscal_start else 0)
    fiscal_month = (day.month - fiscal_start) % 12 + 1
    return (
        int(day.strftime("%Y%m%d")), day, iso_dow, DAY_NAMES[iso_dow - 1], day.day, day.timetuple().tm_yday,
        iso_dow >= 6, iso_week, iso_year, f"{iso_year}-W{iso_week:02d}", day - timedelta(days=iso_dow - 1),
        day.month, calendar.month_name[day.month], day.replace(day=1),
        day.replace(day=calendar.monthrange(day.year, day.month)[1]), f"{day.year}-{day.month:02d}",
        (day.month - 1) // 3 + 1, day.year, fiscal_year, f"FY{fiscal_year}",
        date(fiscal_year - (1 if fiscal_start > 1 else 0), fiscal_start, 1), fiscal_month, (fiscal_month - 1) // 3 + 1,
    )  # fmt: skip


def load(conn: sa.Connection, start: date, end: date, fiscal_start: int = 7) -> tuple[int, int]:
    row = conn.execute(
        sa.text("CALL warehouse.load_dim_date(:s, :e, :m)"), {"s": start, "e": end, "m": fiscal_start}
    ).one()
    return int(row.rows_inserted), int(row.rows_updated)


def rows(conn: sa.Connection, start: date, end: date) -> list[tuple[object, ...]]:
    result = conn.execute(
        sa.text(f"SELECT {COLUMNS} FROM dim.date WHERE full_date BETWEEN :s AND :e ORDER BY full_date"),
        {"s": start, "e": end},
    )
    return [tuple(r) for r in result]


def test_every_day_matches_the_business_rules(upgraded: sa.Engine) -> None:
    start, end = date(2019, 12, 20), date(2027, 1, 10)
    with upgraded.begin() as conn:
        inserted, updated = load(conn, start, end)
        assert (inserted, updated) == ((end - start).days + 1, 0)
        actual = rows(conn, start, end)
    expected = [expected_row(start + timedelta(days=i), 7) for i in range((end - start).days + 1)]
    assert actual == expected


@pytest.mark.parametrize(
    ("day", "fiscal_year", "fiscal_month", "fiscal_quarter", "iso_label", "weekend"),
    [
        (date(2024, 6, 30), 2024, 12, 4, "2024-W26", True),  # last day of FY2024, a Sunday
        (date(2024, 7, 1), 2025, 1, 1, "2024-W27", False),  # FY2025 starts (labelled by the year it ends)
        (date(2020, 12, 31), 2021, 6, 2, "2020-W53", False),  # ISO year with 53 weeks
        (date(2021, 1, 3), 2021, 7, 3, "2020-W53", True),  # January days in the previous ISO year
        (date(2021, 1, 4), 2021, 7, 3, "2021-W01", False),
        (date(2024, 12, 30), 2025, 6, 2, "2025-W01", False),  # December days in the next ISO year
        (date(2024, 2, 29), 2024, 8, 3, "2024-W09", False),  # leap day
    ],
)
def test_fiscal_and_iso_boundaries(
    upgraded: sa.Engine, day: date, fiscal_year: int, fiscal_month: int, fiscal_quarter: int, iso_label: str,
    weekend: bool,
) -> None:  # fmt: skip
    with upgraded.begin() as conn:
        load(conn, day, day)
        row = conn.execute(
            sa.text(
                "SELECT fiscal_year, fiscal_year_label, fiscal_month_number, fiscal_quarter, iso_week_label, "
                "is_weekend FROM dim.date WHERE full_date = :d"
            ),
            {"d": day},
        ).one()
    assert tuple(row) == (fiscal_year, f"FY{fiscal_year}", fiscal_month, fiscal_quarter, iso_label, weekend)


def test_result_does_not_depend_on_session_settings(upgraded: sa.Engine) -> None:
    start, end = date(2024, 1, 1), date(2024, 12, 31)
    with upgraded.begin() as conn:
        conn.exec_driver_sql("SET LOCAL TimeZone = 'Pacific/Kiritimati'")
        conn.exec_driver_sql("SET LOCAL DateStyle = 'SQL, DMY'")
        conn.exec_driver_sql("SET LOCAL IntervalStyle = 'sql_standard'")
        load(conn, start, end)
        actual = rows(conn, start, end)
    assert actual == [expected_row(start + timedelta(days=i), 7) for i in range(366)]


def test_reloading_is_idempotent_and_a_new_fiscal_start_updates_in_place(upgraded: sa.Engine) -> None:
    start, end = date(2025, 1, 1), date(2025, 12, 31)
    with upgraded.begin() as conn:
        assert load(conn, start, end) == (365, 0)
        assert load(conn, start, end) == (0, 0)
        # January start: only July-December change fiscal year; fiscal months change for every month
        assert load(conn, start, end, fiscal_start=1) == (0, 365)
        actual = rows(conn, start, end)
        total = conn.execute(sa.text("SELECT count(*) FROM dim.date")).scalar()
    assert actual == [expected_row(start + timedelta(days=i), 1) for i in range(365)]
    assert total == 365 + 1  # plus the unknown member


def test_the_unknown_member_exists(upgraded: sa.Engine) -> None:
    with upgraded.connect() as conn:
        row = conn.execute(sa.text("SELECT full_date, day_name FROM dim.date WHERE date_key = -1")).one()
    assert tuple(row) == (None, "Unknown")


@pytest.mark.parametrize(
    ("start", "end", "month", "message"),
    [
        (date(2025, 2, 1), date(2025, 1, 1), 7, "invalid range 2025-02-01 to 2025-01-01"),
        (date(1800, 1, 1), date(1800, 1, 2), 7, "outside 1900-01-01"),
        (date(2025, 1, 1), date(2025, 1, 2), 13, "fiscal year start month 13 is not a month number"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message_and_write_nothing(
    upgraded: sa.Engine, start: date, end: date, month: int, message: str
) -> None:
    with pytest.raises(sa.exc.DBAPIError) as raised, upgraded.begin() as conn:
        load(conn, start, end, month)
    assert message in str(raised.value)
    with upgraded.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM dim.date")).scalar() == 1
