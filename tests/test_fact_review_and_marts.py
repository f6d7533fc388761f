"""The review accumulating snapshot and the marts, against hand-computed expectations (business-rules.md).

A crafted project (990001) with one service, six reviews and eight ACC issues is added to the scale-1
demo source; the assertions read only its rows. As-of 2026-11-01 00:00 UTC = 11:00 on 1 November in
Sydney, the business time zone. ``actual_issued_at`` is the source server's local time (Sydney).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from flows import demo_source
from flows.warehouse_flow import warehouse

pytestmark = pytest.mark.usefixtures("prefect_harness")

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_3 = datetime(2026, 11, 3, tzinfo=UTC)
PROJECT = 990001
# review id: status, planned, due, actual_issued_at (local)
REVIEWS = {
    1: ("planned", "2026-10-20", "2026-10-25", None),  # overdue by 7 days
    2: ("in_progress", "2026-10-20", None, None),  # no due date: planned date counts; overdue by 12
    3: ("planned", "2026-11-05", None, None),  # not due yet
    4: ("completed", "2026-10-10", "2026-10-15", "2026-10-14 23:30"),  # on time, 4 days after planned
    5: ("report_issued", "2026-10-10", "2026-10-12", "2026-10-13 00:30"),  # late, 3 days after planned
    6: ("cancelled", "2026-10-01", None, None),  # counts nowhere
}
ISSUE_AGES = (0, 7, 8, 30, 31, 90, 91, 400)  # days before 1 November (local); the 400-day one is a Blocker


def execute(engine: sa.Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [r._asdict() for r in conn.execute(sa.text(sql), params)]


def step_counts(engine: sa.Engine, run_id: int, step: str) -> tuple[int, int]:
    found = rows(engine, "SELECT rows_inserted, rows_updated FROM ctl.run_step WHERE run_id = :r AND step_name = :s",
                 r=run_id, s=step)  # fmt: skip
    return found[0]["rows_inserted"], found[0]["rows_updated"]


@pytest.fixture
def source(upgraded: sa.Engine) -> sa.Engine:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=NOV_1.replace(tzinfo=None))
    execute(upgraded, """INSERT INTO dbo.projects (project_id, project_name, client_id, type_id, status, created_at)
        SELECT :p, 'QA Review Project', client_id, type_id, 'active', '2025-01-01' FROM dbo.projects
        ORDER BY project_id LIMIT 1""", p=PROJECT)  # fmt: skip
    execute(upgraded, """INSERT INTO dbo."ProjectServices" (service_id, project_id, service_code, service_name,
        unit_type, agreed_fee, status, created_at) VALUES (:p, :p, 'QA', 'QA reviews', 'review', 1000, 'in_progress',
        '2025-01-01')""", p=PROJECT)  # fmt: skip
    for review, (status, planned, due, issued) in REVIEWS.items():
        execute(upgraded, """INSERT INTO dbo."ServiceReviews" (review_id, service_id, cycle_no, planned_date, due_date,
            status, actual_issued_at) VALUES (:r, :p, :r, :planned, :due, :status, :issued)""",
            r=PROJECT * 10 + review, p=PROJECT, planned=planned, due=due, status=status, issued=issued)  # fmt: skip
    for number, age in enumerate(ISSUE_AGES, start=1):
        created = datetime(2026, 10, 31, 20) - timedelta(days=age)  # 20:00 UTC: 06:00-07:00 the next day in Sydney
        execute(upgraded, """INSERT INTO dbo.acc_issues (acc_project_id, acc_issue_id, issue_number, pm_project_id,
            project_name, title, status, priority, created_at, updated_at) VALUES ('qa-proj', :i, :n, :p,
            'QA Review Project', 'qa', 'open', :priority, :created, :created)""",
            i=f"age-{age}", n=number, p=PROJECT, priority="Blocker" if age == 400 else "Minor",
            created=created)  # fmt: skip
    return upgraded


def reviews(engine: sa.Engine) -> dict[int, dict[str, Any]]:
    found = rows(
        engine,
        """SELECT review_id - :base AS r, is_completed, is_cancelled, is_deleted, is_overdue,
        days_overdue, planned_vs_actual_days FROM fact.review WHERE review_id > :base""",
        base=PROJECT * 10,
    )
    return {row.pop("r"): row for row in found}


def performance(engine: sa.Engine) -> list[dict[str, Any]]:
    return rows(
        engine,
        """SELECT planned_month, reviews, completed, completed_on_time, on_time_rate, overdue,
        avg_slippage_days FROM mart.review_performance WHERE project_id = :p ORDER BY planned_month""",
        p=PROJECT,
    )


def flags(completed: bool, cancelled: bool, deleted: bool, overdue: bool, days: int | None, pva: int | None):  # type: ignore[no-untyped-def]
    return {"is_completed": completed, "is_cancelled": cancelled, "is_deleted": deleted, "is_overdue": overdue,
            "days_overdue": days, "planned_vs_actual_days": pva}  # fmt: skip


def test_reviews_are_graded_at_the_as_of_date_and_updated_in_place(source: sa.Engine) -> None:
    first = warehouse(as_of=NOV_1)
    assert reviews(source) == {
        1: flags(False, False, False, True, 7, None),
        2: flags(False, False, False, True, 12, None),
        3: flags(False, False, False, False, None, None),
        4: flags(True, False, False, False, None, 4),
        5: flags(True, False, False, False, None, 3),  # issued 00:30 local on 13 October
        6: flags(False, True, False, False, None, None),
    }
    october = {"planned_month": date(2026, 10, 1), "reviews": 4, "completed": 2, "completed_on_time": 1,
               "on_time_rate": Decimal("0.500"), "overdue": 2, "avg_slippage_days": Decimal("3.5")}  # fmt: skip
    november = {"planned_month": date(2026, 11, 1), "reviews": 1, "completed": 0, "completed_on_time": 0,
                "on_time_rate": None, "overdue": 0, "avg_slippage_days": None}  # fmt: skip
    assert performance(source) == [october, november]
    assert step_counts(source, first["run_id"], "warehouse.load_fact_review")[0] > len(REVIEWS)  # demo reviews too

    # review 1 is issued on 2 November (local); review 5 is deleted at the source
    execute(source, """UPDATE dbo."ServiceReviews" SET status = 'completed', actual_issued_at = '2026-11-02 09:00'
        WHERE review_id = :r""", r=PROJECT * 10 + 1)  # fmt: skip
    execute(source, 'DELETE FROM dbo."ServiceReviews" WHERE review_id = :r', r=PROJECT * 10 + 5)
    later = warehouse(as_of=NOV_3)
    graded = reviews(source)
    assert graded[1] == flags(True, False, False, False, None, 13)
    assert graded[2] == flags(False, False, False, True, 14, None)  # overdue grows with the as-of date
    assert graded[5]["is_deleted"] and not graded[5]["is_completed"]
    assert performance(source)[0] == {"planned_month": date(2026, 10, 1), "reviews": 3, "completed": 2,
                                      "completed_on_time": 1, "on_time_rate": Decimal("0.500"), "overdue": 1,
                                      "avg_slippage_days": Decimal("8.5")}  # fmt: skip
    assert step_counts(source, later["run_id"], "warehouse.load_fact_review")[0] == 0  # in place: no new rows
    again = warehouse(as_of=NOV_3)
    assert step_counts(source, again["run_id"], "warehouse.load_fact_review") == (0, 0)


def test_backlog_age_buckets_and_daily_trend(source: sa.Engine) -> None:
    warehouse(as_of=NOV_1)
    buckets = rows(source, """SELECT age_bucket, bucket_order, open_issues, high_priority_open, oldest_age_days,
        snapshot_date, project_name FROM mart.issue_backlog_age WHERE project_id = :p ORDER BY bucket_order""",
        p=PROJECT)  # fmt: skip
    assert [(b["age_bucket"], b["open_issues"], b["high_priority_open"], b["oldest_age_days"]) for b in buckets] == [
        ("0-7", 2, 0, 7), ("8-30", 2, 0, 30), ("31-90", 2, 0, 90), ("90+", 2, 1, 400),
    ]  # fmt: skip
    assert {(b["snapshot_date"], b["project_name"]) for b in buckets} == {(date(2026, 11, 1), "QA Review Project")}
    total = rows(
        source,
        """SELECT (SELECT sum(open_issues) FROM mart.issue_backlog_age) AS mart,
        (SELECT count(*) FROM fact.issue_daily WHERE is_open
            AND snapshot_date_key = (SELECT max(snapshot_date_key) FROM fact.issue_daily)) AS fact""",
    )[0]
    assert total["mart"] == total["fact"] > 0  # every open issue in exactly one bucket

    trend = rows(source, """SELECT priority, issues, open_issues, closed_issues, opened_today, avg_open_age_days
        FROM mart.issue_trend WHERE project_id = :p AND snapshot_date = '2026-11-01' ORDER BY priority""",
        p=PROJECT)  # fmt: skip
    assert trend == [
        {"priority": "Critical", "issues": 1, "open_issues": 1, "closed_issues": 0, "opened_today": 0,
         "avg_open_age_days": Decimal("400.0")},
        {"priority": "Medium", "issues": 7, "open_issues": 7, "closed_issues": 0, "opened_today": 1,
         "avg_open_age_days": Decimal("36.7")},  # (0 + 7 + 8 + 30 + 31 + 90 + 91) / 7
    ]  # fmt: skip


def service_months(engine: sa.Engine) -> dict[int, dict[str, Any]]:
    found = rows(engine, """SELECT month_date_key, agreed_fee, progress_pct, earned_value, claimed, variance,
        reviews_total, reviews_completed, reviews_overdue, run_id FROM fact.service_monthly WHERE service_id = :p""",
        p=PROJECT)  # fmt: skip
    return {row.pop("month_date_key"): row for row in found}


def test_service_months_hold_earned_value_claimed_and_variance(source: sa.Engine) -> None:
    execute(source, 'UPDATE dbo."ProjectServices" SET claimed_to_date = 123.45 WHERE service_id = :p', p=PROJECT)
    with source.connect() as conn:  # progress is the source's own (a trigger derives it from the reviews)
        progress = conn.execute(
            sa.text('SELECT progress_pct FROM dbo."ProjectServices" WHERE service_id = :p'), {"p": PROJECT}
        ).scalar_one()
    first = warehouse(as_of=NOV_1)
    earned = (Decimal("1000") * progress / 100).quantize(Decimal("0.01"))
    november = service_months(source)[20261101]
    assert november == {
        "agreed_fee": Decimal("1000.00"), "progress_pct": progress, "earned_value": earned,
        "claimed": Decimal("123.45"),  # claimed_to_date, not the lump sum (NULL here) nor the agreed fee
        "variance": earned - Decimal("123.45"), "reviews_total": 5, "reviews_completed": 2, "reviews_overdue": 2,
        "run_id": first["run_id"],
    }  # fmt: skip

    shown = rows(source, """SELECT project_name, service_code, earned_value, claimed, variance, reviews_overdue
        FROM mart.service_financials WHERE service_id = :p AND month = '2026-11-01'""", p=PROJECT)  # fmt: skip
    assert shown == [{"project_name": "QA Review Project", "service_code": "QA", "earned_value": earned,
                      "claimed": Decimal("123.45"), "variance": earned - Decimal("123.45"),
                      "reviews_overdue": 2}]  # fmt: skip

    # December: a new claim. November has ended: it is taken once more for its end-of-month state (review 3,
    # planned for 5 November, was overdue by then), and the claim stamped in December stays out of it
    execute(source, 'UPDATE dbo."ProjectServices" SET claimed_to_date = 500 WHERE service_id = :p', p=PROJECT)
    december_run = warehouse(as_of=datetime(2026, 12, 2, tzinfo=UTC))
    months = service_months(source)
    assert months[20261101] == {**november, "reviews_overdue": 3, "run_id": december_run["run_id"]}
    assert months[20261201]["claimed"] == Decimal("500.00")
    assert months[20261201]["variance"] == earned - Decimal("500.00")
    assert months[20261201]["reviews_overdue"] == 3
    assert months[20261201]["run_id"] == december_run["run_id"]
    # another December change: the ended November is left alone (no late data reaches it)
    execute(source, 'UPDATE dbo."ProjectServices" SET claimed_to_date = 600 WHERE service_id = :p', p=PROJECT)
    warehouse(as_of=datetime(2026, 12, 2, 12, tzinfo=UTC))
    months = service_months(source)
    assert months[20261101] == {**november, "reviews_overdue": 3, "run_id": december_run["run_id"]}
    assert months[20261201]["claimed"] == Decimal("600.00")
    again = warehouse(as_of=datetime(2026, 12, 2, 12, tzinfo=UTC))
    assert service_months(source) == months
    with source.connect() as conn:
        written = conn.execute(
            sa.text("SELECT rows_inserted + rows_updated + rows_deleted FROM ctl.run_step WHERE run_id = :r "
                    "AND step_name = 'warehouse.load_fact_service_monthly'"), {"r": again["run_id"]},
        ).scalar_one()  # fmt: skip
    assert written == 0


def project_months(engine: sa.Engine) -> dict[int, dict[str, Any]]:
    found = rows(engine, """SELECT month_date_key, issues_total, issues_open, issues_closed, high_priority_open,
        avg_resolution_days, reviews_total, reviews_completed, reviews_overdue, services_in_progress,
        services_completed, earned_value, claimed, variance, run_id FROM fact.project_monthly WHERE project_id = :p""",
        p=PROJECT)  # fmt: skip
    return {row.pop("month_date_key"): row for row in found}


def test_project_months_follow_the_month_end_and_late_data(source: sa.Engine) -> None:
    first = warehouse(as_of=NOV_1)
    november = project_months(source)[20261101]
    service = service_months(source)[20261101]
    assert {k: v for k, v in november.items() if k not in ("earned_value", "claimed", "variance", "run_id")} == {
        "issues_total": 8, "issues_open": 8, "issues_closed": 0, "high_priority_open": 1, "avg_resolution_days": None,
        "reviews_total": 5, "reviews_completed": 2, "reviews_overdue": 2, "services_in_progress": 1,
        "services_completed": 0,
    }  # fmt: skip
    assert (november["earned_value"], november["claimed"], november["variance"]) == (
        service["earned_value"], service["claimed"], service["variance"])  # fmt: skip
    assert november["run_id"] == first["run_id"]

    # 2 December: the missed November days are filled, so November now holds its end-of-month state
    warehouse(as_of=datetime(2026, 12, 2, tzinfo=UTC))
    months = project_months(source)
    assert set(months) == {20261101, 20261201}
    assert months[20261101]["reviews_overdue"] == 3  # review 3 (planned 5 November) was overdue at the month's end

    # a late import: the 8-day-old issue was closed on 20 November (local), stamped then, arriving on 3 December
    execute(source, """UPDATE dbo.acc_issues SET status = 'closed', closed_at = '2026-11-20 01:00',
        updated_at = '2026-11-20 01:00' WHERE acc_project_id = 'qa-proj' AND acc_issue_id = 'age-8'""")  # fmt: skip
    late = warehouse(as_of=datetime(2026, 12, 3, tzinfo=UTC))
    after = project_months(source)
    assert (after[20261101]["issues_open"], after[20261101]["issues_closed"]) == (7, 1)
    assert after[20261101]["avg_resolution_days"] == Decimal("27.0")  # created 24 October, closed 20 November
    assert after[20261101]["run_id"] == late["run_id"]

    # a late deletion: the 7-day-old issue was deleted on 25 November (local), arriving on 3 December. It
    # removes November's daily rows without writing any; November is recomputed all the same
    execute(source, """UPDATE dbo.acc_issues SET is_deleted = TRUE, deleted_at = '2026-11-25 01:00',
        updated_at = '2026-11-25 01:00' WHERE acc_project_id = 'qa-proj' AND acc_issue_id = 'age-7'""")  # fmt: skip
    deleted = warehouse(as_of=datetime(2026, 12, 3, 6, tzinfo=UTC))
    after = project_months(source)
    assert (after[20261101]["issues_total"], after[20261101]["issues_open"]) == (7, 6)
    assert after[20261101]["run_id"] == deleted["run_id"]
    assert after[20261201]["issues_total"] == 7

    # an edit stamped in December leaves the ended November alone
    execute(source, """UPDATE dbo.acc_issues SET priority = 'Blocker', updated_at = '2026-12-03 01:00'
        WHERE acc_project_id = 'qa-proj' AND acc_issue_id = 'age-0'""")  # fmt: skip
    warehouse(as_of=datetime(2026, 12, 4, tzinfo=UTC))
    final = project_months(source)
    assert final[20261101] == after[20261101]
    assert final[20261201]["high_priority_open"] == 2


def test_project_overview_and_scorecard(source: sa.Engine) -> None:
    warehouse(as_of=NOV_1)
    # December: one issue closed and a claim ahead of progress
    execute(source, """UPDATE dbo.acc_issues SET status = 'closed', closed_at = '2026-12-01 09:00',
        updated_at = '2026-12-01 09:00' WHERE acc_project_id = 'qa-proj' AND acc_issue_id = 'age-30'""")  # fmt: skip
    execute(source, 'UPDATE dbo."ProjectServices" SET claimed_to_date = 900 WHERE service_id = :p', p=PROJECT)
    warehouse(as_of=datetime(2026, 12, 2, tzinfo=UTC))
    months = project_months(source)

    overview = rows(source, """SELECT month, fiscal_year, fiscal_quarter, fiscal_month, project_name, issues_open,
        reviews_overdue, earned_value, claimed, variance FROM mart.project_overview WHERE project_id = :p
        ORDER BY month""", p=PROJECT)  # fmt: skip
    # the fiscal year starts in July and is labelled by the year it ends in: November 2026 is month 5 of FY2027
    assert [(o["month"], o["fiscal_year"], o["fiscal_quarter"], o["fiscal_month"]) for o in overview] == [
        (date(2026, 11, 1), 2027, 2, 5), (date(2026, 12, 1), 2027, 2, 6),
    ]  # fmt: skip
    assert [o["issues_open"] for o in overview] == [months[20261101]["issues_open"], 7]
    assert overview[1]["claimed"] == Decimal("900.00")

    card = rows(source, """SELECT month, fiscal_year, project_name, issues_open, issues_open_change, reviews_total,
        reviews_completed, review_completion_rate, reviews_overdue, variance, variance_change, attention
        FROM mart.project_scorecard WHERE project_id = :p""", p=PROJECT)  # fmt: skip
    earned = months[20261201]["earned_value"]
    assert card == [{
        "month": date(2026, 12, 1), "fiscal_year": 2027, "project_name": "QA Review Project", "issues_open": 7,
        "issues_open_change": 7 - months[20261101]["issues_open"], "reviews_total": 5, "reviews_completed": 2,
        "review_completion_rate": Decimal("0.400"), "reviews_overdue": 3, "variance": earned - Decimal("900.00"),
        "variance_change": (earned - Decimal("900.00")) - months[20261101]["variance"],
        "attention": "overdue reviews",
    }]  # fmt: skip
    with source.connect() as conn:
        listed, current, unknown = conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM mart.project_scorecard), (SELECT count(*) FROM dim.project "
            "WHERE is_current AND NOT is_deleted AND project_sk <> -1), "
            "(SELECT count(*) FROM mart.project_scorecard WHERE project_id = -1 AND project_name = 'Unresolved')"
        )).one()  # fmt: skip
    # one row per live project, and one for the demo's issues without a PM project (the unknown project)
    assert (listed, unknown) == (current + 1, 1)


def review_events(engine: sa.Engine) -> set[tuple[Any, ...]]:
    found = rows(engine, """SELECT review_id - :base AS r, event_type, event_at, event_date_key, from_value, to_value
        FROM fact.review_event WHERE review_id > :base""", base=PROJECT * 10)  # fmt: skip
    return {tuple(row.values()) for row in found}


def written(engine: sa.Engine, run_id: int, step: str) -> int:
    found = rows(engine, """SELECT rows_inserted + rows_updated + rows_deleted AS n FROM ctl.run_step
        WHERE run_id = :r AND step_name = :s""", r=run_id, s=step)  # fmt: skip
    return int(found[0]["n"])


def test_review_events_follow_each_change(source: sa.Engine) -> None:
    warehouse(as_of=NOV_1)
    # reviews have no change column: events are timed when a run first sees them, except issued
    issued_4 = datetime(2026, 10, 14, 12, 30, tzinfo=UTC)  # 23:30 local (AEDT, +11)
    issued_5 = datetime(2026, 10, 12, 13, 30, tzinfo=UTC)  # 00:30 local on 13 October
    first = {
        (1, "planned", NOV_1, 20261101, None, "2026-10-25"),
        (2, "planned", NOV_1, 20261101, None, "2026-10-20"),
        (3, "planned", NOV_1, 20261101, None, "2026-11-05"),
        (4, "planned", NOV_1, 20261101, None, "2026-10-15"),
        (4, "completed", issued_4, 20261014, None, "completed"),
        (4, "issued", issued_4, 20261014, None, "2026-10-14T12:30:00Z"),
        (5, "planned", NOV_1, 20261101, None, "2026-10-12"),
        (5, "completed", issued_5, 20261013, None, "report_issued"),
        (5, "issued", issued_5, 20261013, None, "2026-10-12T13:30:00Z"),
        (6, "planned", NOV_1, 20261101, None, "2026-10-01"),
        (6, "cancelled", NOV_1, 20261101, None, "cancelled"),
    }
    assert review_events(source) == first

    # review 1 issued on 2 November 09:00 local; review 2 given a due date; review 4 reopened; review 5 deleted
    execute(source, """UPDATE dbo."ServiceReviews" SET status = 'completed', actual_issued_at = '2026-11-02 09:00'
        WHERE review_id = :r""", r=PROJECT * 10 + 1)  # fmt: skip
    execute(
        source, "UPDATE dbo.\"ServiceReviews\" SET due_date = '2026-11-10' WHERE review_id = :r", r=PROJECT * 10 + 2
    )
    execute(source, "UPDATE dbo.\"ServiceReviews\" SET status = 'in_progress' WHERE review_id = :r", r=PROJECT * 10 + 4)
    execute(source, 'DELETE FROM dbo."ServiceReviews" WHERE review_id = :r', r=PROJECT * 10 + 5)
    later = warehouse(as_of=NOV_3)
    issued_1 = datetime(2026, 11, 1, 22, tzinfo=UTC)
    assert review_events(source) - first == {
        (1, "status_change", NOV_3, 20261103, "planned", "completed"),
        (1, "completed", issued_1, 20261102, "planned", "completed"),
        (1, "issued", issued_1, 20261102, None, "2026-11-01T22:00:00Z"),
        (2, "rescheduled", NOV_3, 20261103, "2026-10-20", "2026-11-10"),
        (4, "status_change", NOV_3, 20261103, "completed", "in_progress"),
        (4, "reopened", NOV_3, 20261103, "completed", "in_progress"),
        (5, "deleted", NOV_3, 20261103, "report_issued", "report_issued"),
    }  # fmt: skip
    assert first <= review_events(source)  # earlier events stay as they were
    assert written(source, later["run_id"], "warehouse.load_fact_review_event") >= 7
    again = warehouse(as_of=NOV_3)
    assert written(source, again["run_id"], "warehouse.load_fact_review_event") == 0


def bridge(engine: sa.Engine) -> set[tuple[int, str, str, int]]:
    found = rows(engine, """SELECT b.review_id - :base AS r, k.source_issue_id, b.activity, b.window_days
        FROM brg.review_issue AS b JOIN dim.issue_key AS k ON k.issue_key = b.issue_key
        WHERE b.review_id > :base""", base=PROJECT * 10)  # fmt: skip
    return {tuple(row.values()) for row in found}  # type: ignore[misc]


def test_review_issue_bridge_links_issues_in_the_window(source: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    warehouse(as_of=NOV_1)
    # local creation dates: age-0 1 Nov, age-7 25 Oct, age-8 24 Oct, age-30 2 Oct, age-31 1 Oct; 14-day windows
    # end on the issued date, else due, else planned: review 1 12-25 Oct, 2 7-20 Oct, 3 23 Oct-5 Nov,
    # 4 1-14 Oct (issued 14 Oct), 5 30 Sep-13 Oct (issued 13 Oct); 6 is cancelled
    opened = {
        (1, "age-7"), (1, "age-8"), (3, "age-0"), (3, "age-7"), (3, "age-8"), (4, "age-30"), (4, "age-31"),
        (5, "age-30"), (5, "age-31"),
    }  # fmt: skip
    assert bridge(source) == {(r, i, "opened", 14) for r, i in opened}

    # age-0 is closed on 2 November (local): inside review 3's window
    execute(source, """UPDATE dbo.acc_issues SET status = 'closed', closed_at = '2026-11-01 21:00',
        updated_at = '2026-11-01 21:00' WHERE acc_project_id = 'qa-proj' AND acc_issue_id = 'age-0'""")  # fmt: skip
    closed = warehouse(as_of=NOV_3)
    assert bridge(source) == {(r, i, "opened", 14) for r, i in opened} | {(3, "age-0", "closed", 14)}
    assert step_counts(source, closed["run_id"], "warehouse.load_brg_review_issue")[0] >= 1
    again = warehouse(as_of=NOV_3)
    assert written(source, again["run_id"], "warehouse.load_brg_review_issue") == 0

    # age-8 is deleted at the source (2 November): it leaves every window
    execute(source, """UPDATE dbo.acc_issues SET is_deleted = TRUE, deleted_at = '2026-11-02 01:00',
        updated_at = '2026-11-02 01:00' WHERE acc_project_id = 'qa-proj' AND acc_issue_id = 'age-8'""")  # fmt: skip
    warehouse(as_of=NOV_3 + timedelta(hours=1))
    opened -= {(1, "age-8"), (3, "age-8")}
    assert bridge(source) == {(r, i, "opened", 14) for r, i in opened} | {(3, "age-0", "closed", 14)}

    # a 30-day window re-derives every review: review 2 (7 Sep... 20 Oct) now reaches age-30 and age-31
    monkeypatch.setenv("PMW_REVIEW_ISSUE_WINDOW_DAYS", "30")
    warehouse(as_of=NOV_3 + timedelta(hours=2))
    wider = bridge(source)
    assert {(r, i) for r, i, activity, days in wider if activity == "opened"} >= opened | {(2, "age-30"), (2, "age-31")}
    assert not {i for _, i, *_ in wider} & {"age-8"}
    assert {days for *_, days in wider} == {30}
    with source.connect() as conn:
        stale = conn.execute(sa.text("SELECT count(*) FROM brg.review_issue WHERE window_days <> 30")).scalar_one()
    assert stale == 0


def test_a_window_length_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from flows.settings import Settings

    monkeypatch.setenv("PMW_REVIEW_ISSUE_WINDOW_DAYS", "0")
    with pytest.raises(ValidationError, match="review_issue_window_days"):
        Settings()


def test_a_project_referenced_before_it_is_loaded_is_an_inferred_member_completed_in_place(source: sa.Engine) -> None:
    late_project = 990777
    execute(source, """INSERT INTO dbo.acc_issues (acc_project_id, acc_issue_id, issue_number, pm_project_id,
        project_name, title, status, priority, created_at, updated_at) VALUES ('late-proj', 'late-1', 1, :p,
        'Not yet in PM', 'qa', 'open', 'Minor', '2026-10-30 00:00', '2026-10-30 00:00')""", p=late_project)  # fmt: skip
    warehouse(as_of=NOV_1)
    inferred = rows(source, """SELECT project_sk, project_name, is_inferred, valid_from FROM dim.project
        WHERE project_id = :p AND is_current""", p=late_project)  # fmt: skip
    assert len(inferred) == 1 and inferred[0]["is_inferred"] and inferred[0]["project_name"] is None
    assert inferred[0]["valid_from"] == datetime(1900, 1, 1, tzinfo=UTC)
    sk = inferred[0]["project_sk"]
    snapshot = rows(source, """SELECT DISTINCT f.project_sk FROM fact.issue_daily AS f JOIN dim.issue_key AS k
        ON k.issue_key = f.issue_key WHERE k.source_issue_id = 'late-1'""")  # fmt: skip
    assert snapshot == [{"project_sk": sk}]  # the inferred member, not the unknown one (-1)
    with source.connect() as conn:
        warned = conn.execute(sa.text("""SELECT status, failing_count FROM ctl.data_quality_result
            WHERE check_name = 'inferred_members' ORDER BY run_id DESC LIMIT 1""")).one()  # fmt: skip
    assert warned.status == "fail" and warned.failing_count >= 1

    # a run before the project arrives: the full compare of projects must not close it as a hard delete
    warehouse(as_of=datetime(2026, 11, 2, tzinfo=UTC))
    waiting = rows(source, "SELECT project_sk, is_inferred, is_deleted FROM dim.project WHERE project_id = :p",
                   p=late_project)  # fmt: skip
    assert waiting == [{"project_sk": sk, "is_inferred": True, "is_deleted": False}]

    # the project arrives: the same surrogate key is completed in place, the facts keep pointing at it
    execute(source, """INSERT INTO dbo.projects (project_id, project_name, client_id, type_id, status, created_at)
        SELECT :p, 'Late Project', client_id, type_id, 'active', '2026-10-01' FROM dbo.projects
        ORDER BY project_id LIMIT 1""", p=late_project)  # fmt: skip
    warehouse(as_of=NOV_3)
    completed = rows(source, """SELECT project_sk, project_name, is_inferred FROM dim.project WHERE project_id = :p""",
                     p=late_project)  # fmt: skip
    assert completed == [{"project_sk": sk, "project_name": "Late Project", "is_inferred": False}]
    trend = rows(source, """SELECT DISTINCT project_name FROM mart.issue_trend WHERE project_id = :p""",
                 p=late_project)  # fmt: skip
    assert trend == [{"project_name": "Late Project"}]
