"""Project KPIs that add up to the snapshot, with the unknown project; money checks (issue #13, points 8 and 4).

The scale-1 demo source gets a crafted ACC tracker project, ``no-pm``, whose issues name no PM project (no key,
and a name that matches none), and a crafted service whose claims run ahead of its fee. As-of 2026-11-01
00:00 UTC is 11:00 on 1 November in Sydney, the business time zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import cloned, dispose_flow_engines, execute, seeded_template, warehouse_at
from sqlalchemy.engine import URL

from flows import quality, roles
from flows.warehouse_flow import warehouse

pytestmark = pytest.mark.usefixtures("prefect_harness")

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, tzinfo=UTC)
TIME_ZONE = "Australia/Sydney"
SERVICE = 990101  # fee 1000, claimed 3000: a variation, allowed but reported
# issue id: status, priority, created (UTC), closed (UTC): the unknown project's own issues
NO_PM_ISSUES = {
    "np-1": ("open", "Blocker", datetime(2026, 10, 1), None),
    "np-2": ("open", "Minor", datetime(2026, 10, 10), None),
    "np-3": ("closed", "Minor", datetime(2026, 10, 2), datetime(2026, 10, 12)),
}
ISSUE_MEASURES = ("issues_total", "issues_open", "issues_closed", "high_priority_open", "avg_resolution_days")


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [r._asdict() for r in conn.execute(sa.text(sql), params)]


def _craft(engine: sa.Engine) -> None:
    for issue, (status, priority, created, closed) in NO_PM_ISSUES.items():
        execute(engine, """INSERT INTO dbo.acc_issues (acc_project_id, acc_issue_id, issue_number, pm_project_id,
            project_name, title, status, priority, created_at, closed_at, updated_at) VALUES ('no-pm', :i, :n, NULL,
            'Tracker project with no PM project', 'qa', :status, :priority, :created, :closed, :created)""",
            i=issue, n=int(issue[-1]), status=status, priority=priority, created=created, closed=closed)  # fmt: skip
    execute(engine, """INSERT INTO dbo."ProjectServices" (service_id, project_id, service_code, service_name, unit_type,
        agreed_fee, claimed_to_date, status, created_at) SELECT :s, min(project_id), 'VAR', 'Variation-heavy service',
        'lump_sum', 1000, 3000, 'in_progress', '2025-01-01' FROM dbo.projects""", s=SERVICE)  # fmt: skip


@pytest.fixture(scope="module")
def loaded(server_admin_url: URL) -> Iterator[URL]:
    """A warehouse after one successful run at NOV_1 over the seeded and crafted source, to clone."""
    with seeded_template(server_admin_url, "pmw_kpi_template", NOV_1) as url:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        _craft(engine)
        with warehouse_at(url):
            assert warehouse(as_of=NOV_1)["status"] == "success"
        engine.dispose()
        dispose_flow_engines()
        yield url


@pytest.fixture
def warehouse_db(server_admin_url: URL, loaded: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    with cloned(server_admin_url, loaded, monkeypatch) as engine:
        yield engine


# the month's state day (its last day, or the published as-of date for the as-of month) and what the daily
# snapshot holds then, per project: the numbers fact.project_monthly must repeat
SNAPSHOT_BY_PROJECT = """
WITH state_day AS (
    SELECT month_date_key, LEAST(
        to_char(to_date(month_date_key::text, 'YYYYMMDD') + interval '1 month' - interval '1 day', 'YYYYMMDD')::integer,
        (SELECT as_of_date_key FROM ctl.publication ORDER BY run_id DESC LIMIT 1)) AS snapshot_date_key
    FROM (SELECT DISTINCT month_date_key FROM fact.project_monthly) AS months
)
SELECT s.month_date_key, p.project_id, count(*) AS issues_total, count(*) FILTER (WHERE f.is_open) AS issues_open,
    count(*) FILTER (WHERE f.is_closed) AS issues_closed,
    count(*) FILTER (WHERE f.is_open AND f.is_high_priority) AS high_priority_open,
    round(avg(f.resolution_days), 1) AS avg_resolution_days
FROM state_day AS s
JOIN fact.issue_daily AS f ON f.snapshot_date_key = s.snapshot_date_key
JOIN dim.project AS p ON p.project_sk = f.project_sk
GROUP BY s.month_date_key, p.project_id"""


def snapshot_by_project(engine: sa.Engine) -> dict[tuple[int, int], dict[str, Any]]:
    return {(r.pop("month_date_key"), r.pop("project_id")): r for r in rows(engine, SNAPSHOT_BY_PROJECT)}


def kpis_with_issues(engine: sa.Engine) -> dict[tuple[int, int], dict[str, Any]]:
    found = rows(engine, f"SELECT month_date_key, project_id, {', '.join(ISSUE_MEASURES)} FROM fact.project_monthly "
                         "WHERE issues_total > 0")  # fmt: skip
    return {(r.pop("month_date_key"), r.pop("project_id")): r for r in found}


def monthly_totals(engine: sa.Engine, source: str, month: str) -> dict[str, int]:
    return rows(engine, f"""SELECT sum(issues_open) AS issues_open, sum(high_priority_open) AS high_priority_open
        FROM {source} WHERE {month}""")[0]  # fmt: skip


def test_issues_without_a_pm_project_count_under_the_unknown_project_so_month_totals_equal_the_snapshot(
    warehouse_db: sa.Engine,
) -> None:
    snapshot = snapshot_by_project(warehouse_db)
    unknown = snapshot[(20261101, -1)]
    assert unknown["issues_total"] >= len(NO_PM_ISSUES) and unknown["high_priority_open"] >= 1
    # every measure from the snapshot, per month and project, the unknown project (-1) included
    assert kpis_with_issues(warehouse_db) == snapshot

    overview = rows(warehouse_db, """SELECT month, project_name, issues_total, issues_open, issues_closed
        FROM mart.project_overview WHERE project_id = -1""")  # fmt: skip
    assert [(o["month"].isoformat(), o["project_name"]) for o in overview] == [("2026-11-01", "Unresolved")]
    assert overview[0]["issues_total"] == unknown["issues_total"]
    card = rows(warehouse_db, "SELECT project_name, issues_open, attention FROM mart.project_scorecard "
                              "WHERE project_id = -1")  # fmt: skip
    assert card == [{"project_name": "Unresolved", "issues_open": unknown["issues_open"],
                     "attention": "high-priority issues"}]  # fmt: skip
    # the dashboard's month adds up to the snapshot of its as-of date
    assert monthly_totals(warehouse_db, "mart.project_scorecard", "TRUE") == rows(
        warehouse_db, """SELECT count(*) FILTER (WHERE is_open) AS issues_open,
        count(*) FILTER (WHERE is_open AND is_high_priority) AS high_priority_open
        FROM fact.issue_daily WHERE snapshot_date_key = 20261101""")[0]  # fmt: skip

    # December: np-2 is given its PM project (stamped 20 November, arriving late), np-1 is closed on
    # 1 December, a new issue without a project arrives; the ended November is taken at its last day
    execute(warehouse_db, """UPDATE dbo.acc_issues SET pm_project_id = (SELECT min(project_id) FROM dbo.projects),
        updated_at = '2026-11-20 00:00' WHERE acc_project_id = 'no-pm' AND acc_issue_id = 'np-2'""")  # fmt: skip
    execute(warehouse_db, """UPDATE dbo.acc_issues SET status = 'closed', closed_at = '2026-12-01 00:00',
        updated_at = '2026-12-01 00:00' WHERE acc_project_id = 'no-pm' AND acc_issue_id = 'np-1'""")  # fmt: skip
    execute(warehouse_db, """INSERT INTO dbo.acc_issues (acc_project_id, acc_issue_id, issue_number, pm_project_id,
        project_name, title, status, priority, created_at, updated_at) VALUES ('no-pm', 'np-4', 4, NULL,
        'Tracker project with no PM project', 'qa', 'open', 'Minor', '2026-12-01 01:00',
        '2026-12-01 01:00')""")  # fmt: skip
    december = warehouse(as_of=DEC_2)
    snapshot = snapshot_by_project(warehouse_db)
    assert {month for month, _ in snapshot} == {20261101, 20261201}
    assert snapshot[(20261101, -1)]["issues_total"] == unknown["issues_total"] - 1  # np-2 moved from 20 November
    assert snapshot[(20261201, -1)]["issues_open"] == unknown["issues_open"] - 1  # np-2 moved, np-1 closed, np-4 new
    assert kpis_with_issues(warehouse_db) == snapshot
    assert monthly_totals(warehouse_db, "mart.project_scorecard", "TRUE") == monthly_totals(
        warehouse_db, "fact.project_monthly", "month_date_key = 20261201")  # fmt: skip

    # incremental as before: the same as-of again computes the as-of month only if something moved; nothing did
    again = warehouse(as_of=DEC_2)
    written = rows(warehouse_db, """SELECT run_id, rows_inserted + rows_updated + rows_deleted AS n FROM ctl.run_step
        WHERE step_name = 'warehouse.load_fact_project_monthly' AND run_id IN (:a, :b) ORDER BY run_id""",
        a=december["run_id"], b=again["run_id"])  # fmt: skip
    assert written[0]["n"] > 0 and written[1]["n"] == 0


def results(engine: sa.Engine, run_id: int) -> dict[str, dict[str, Any]]:
    found = rows(engine, """SELECT check_name, severity, status, failing_count, sample_keys
        FROM ctl.data_quality_result WHERE run_id = :r""", r=run_id)  # fmt: skip
    return {r.pop("check_name"): r for r in found}


def test_a_claim_above_the_fee_is_a_warning_that_names_the_service(warehouse_db: sa.Engine) -> None:
    run_id = rows(warehouse_db, "SELECT max(run_id) AS r FROM ctl.run")[0]["r"]
    above = results(warehouse_db, run_id)["service_claimed_above_fee"]
    assert (above["severity"], above["status"]) == ("warn", "fail")
    assert f"{SERVICE}, VAR, " in above["sample_keys"] and "3000.00, 1000.00" in above["sample_keys"]
    assert rows(warehouse_db, "SELECT status FROM ctl.run WHERE run_id = :r", r=run_id) == [{"status": "success"}]

    # the claim comes back within the fee: the service is no longer listed
    execute(warehouse_db, 'UPDATE dbo."ProjectServices" SET claimed_to_date = 900 WHERE service_id = :s', s=SERVICE)
    later = warehouse(as_of=NOV_1 + timedelta(hours=1))
    assert f"{SERVICE}, VAR" not in (results(warehouse_db, later["run_id"])["service_claimed_above_fee"]["sample_keys"]
                                     or "")  # fmt: skip


MONEY_CHECKS = ("fact_service_monthly_variance", "fact_project_monthly_counts", "fact_monthly_measures_are_numbers")


def run_money_checks(engine: sa.Engine, run_id: int) -> dict[str, quality.CheckResult]:
    """The money checks as a run runs them: read-only, as the analyst."""
    checks = [c for c in quality.load_checks() if c.name in MONEY_CHECKS]
    found = quality.run_checks(engine, checks, NOV_1, run_id, TIME_ZONE, as_role=roles.CHECK_ROLE)
    return {r.check.name: r for r in found}


def test_a_nan_fee_fails_the_variance_checks_even_where_nan_equals_nan(warehouse_db: sa.Engine) -> None:
    run_id = rows(warehouse_db, "SELECT max(run_id) AS r FROM ctl.run")[0]["r"]
    clean = run_money_checks(warehouse_db, run_id)
    assert {name: (r.status, r.failing_count) for name, r in clean.items()} == dict.fromkeys(MONEY_CHECKS, ("pass", 0))

    # what agreed_fee = NaN made of the facts before staging quarantined it (written here directly): earned
    # value, variance and the project's month NaN; 'NaN' = 'NaN' is true, so variance <> earned - claimed is not
    execute(warehouse_db, """UPDATE fact.service_monthly SET agreed_fee = 'NaN', earned_value = 'NaN',
        variance = 'NaN' WHERE service_id = :s AND month_date_key = 20261101""", s=SERVICE)  # fmt: skip
    execute(warehouse_db, """UPDATE fact.project_monthly SET earned_value = 'NaN', variance = 'NaN'
        WHERE month_date_key = 20261101 AND project_id = (SELECT min(project_id) FROM dbo.projects)""")  # fmt: skip
    failed = run_money_checks(warehouse_db, run_id)
    assert {name: (r.status, r.failing_count) for name, r in failed.items()} == {
        "fact_service_monthly_variance": ("fail", 1),
        "fact_project_monthly_counts": ("fail", 1),
        "fact_monthly_measures_are_numbers": ("fail", 2),
    }
    assert f"20261101, {SERVICE}" in failed["fact_service_monthly_variance"].sample_keys
    assert set(failed["fact_monthly_measures_are_numbers"].sample_keys) == {
        f"fact.service_monthly, 20261101, {SERVICE}, agreed_fee earned_value variance",
        "fact.project_monthly, 20261101, "
        + str(rows(warehouse_db, "SELECT min(project_id) AS p FROM dbo.projects")[0]["p"])
        + ", earned_value variance",
    }

    # NaN in the variance alone, and a NaN progress, are caught too
    execute(warehouse_db, """UPDATE fact.service_monthly SET agreed_fee = 1000, earned_value = 0, variance = 'NaN',
        progress_pct = 'NaN' WHERE service_id = :s AND month_date_key = 20261101""", s=SERVICE)  # fmt: skip
    again = run_money_checks(warehouse_db, run_id)
    assert again["fact_service_monthly_variance"].failing_count == 1
    assert f"fact.service_monthly, 20261101, {SERVICE}, progress_pct variance" in (
        again["fact_monthly_measures_are_numbers"].sample_keys)  # fmt: skip
