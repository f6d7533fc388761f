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
from flows.warehouse_flow import RunParameters, warehouse

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
    first = warehouse(RunParameters(as_of=NOV_1))
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
    later = warehouse(RunParameters(as_of=NOV_3))
    graded = reviews(source)
    assert graded[1] == flags(True, False, False, False, None, 13)
    assert graded[2] == flags(False, False, False, True, 14, None)  # overdue grows with the as-of date
    assert graded[5]["is_deleted"] and not graded[5]["is_completed"]
    assert performance(source)[0] == {"planned_month": date(2026, 10, 1), "reviews": 3, "completed": 2,
                                      "completed_on_time": 1, "on_time_rate": Decimal("0.500"), "overdue": 1,
                                      "avg_slippage_days": Decimal("8.5")}  # fmt: skip
    assert step_counts(source, later["run_id"], "warehouse.load_fact_review")[0] == 0  # in place: no new rows
    again = warehouse(RunParameters(as_of=NOV_3))
    assert step_counts(source, again["run_id"], "warehouse.load_fact_review") == (0, 0)


def test_backlog_age_buckets_and_daily_trend(source: sa.Engine) -> None:
    warehouse(RunParameters(as_of=NOV_1))
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
    first = warehouse(RunParameters(as_of=NOV_1))
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
    december_run = warehouse(RunParameters(as_of=datetime(2026, 12, 2, tzinfo=UTC)))
    months = service_months(source)
    assert months[20261101] == {**november, "reviews_overdue": 3, "run_id": december_run["run_id"]}
    assert months[20261201]["claimed"] == Decimal("500.00")
    assert months[20261201]["variance"] == earned - Decimal("500.00")
    assert months[20261201]["reviews_overdue"] == 3
    assert months[20261201]["run_id"] == december_run["run_id"]
    # another December change: the ended November is left alone (no late data reaches it)
    execute(source, 'UPDATE dbo."ProjectServices" SET claimed_to_date = 600 WHERE service_id = :p', p=PROJECT)
    warehouse(RunParameters(as_of=datetime(2026, 12, 2, 12, tzinfo=UTC)))
    months = service_months(source)
    assert months[20261101] == {**november, "reviews_overdue": 3, "run_id": december_run["run_id"]}
    assert months[20261201]["claimed"] == Decimal("600.00")
    again = warehouse(RunParameters(as_of=datetime(2026, 12, 2, 12, tzinfo=UTC)))
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
    first = warehouse(RunParameters(as_of=NOV_1))
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
    warehouse(RunParameters(as_of=datetime(2026, 12, 2, tzinfo=UTC)))
    months = project_months(source)
    assert set(months) == {20261101, 20261201}
    assert months[20261101]["reviews_overdue"] == 3  # review 3 (planned 5 November) was overdue at the month's end

    # a late import: the 8-day-old issue was closed on 20 November (local), stamped then, arriving on 3 December
    execute(source, """UPDATE dbo.acc_issues SET status = 'closed', closed_at = '2026-11-20 01:00',
        updated_at = '2026-11-20 01:00' WHERE acc_project_id = 'qa-proj' AND acc_issue_id = 'age-8'""")  # fmt: skip
    late = warehouse(RunParameters(as_of=datetime(2026, 12, 3, tzinfo=UTC)))
    after = project_months(source)
    assert (after[20261101]["issues_open"], after[20261101]["issues_closed"]) == (7, 1)
    assert after[20261101]["avg_resolution_days"] == Decimal("27.0")  # created 24 October, closed 20 November
    assert after[20261101]["run_id"] == late["run_id"]

    # an edit stamped in December leaves the ended November alone
    execute(source, """UPDATE dbo.acc_issues SET priority = 'Blocker', updated_at = '2026-12-03 01:00'
        WHERE acc_project_id = 'qa-proj' AND acc_issue_id = 'age-0'""")  # fmt: skip
    warehouse(RunParameters(as_of=datetime(2026, 12, 4, tzinfo=UTC)))
    final = project_months(source)
    assert final[20261101] == after[20261101]
    assert final[20261201]["high_priority_open"] == 2
