"""Lookups per the business rules, and text analytics in the daily snapshot (issue #13, points 1 and 2).

Source rows are shaped as the trackers send them: Revizto writes `Solved` where the status map says
`solved`, and spaces and case vary. Crafted issues go into their own tracker projects (Revizto 777001,
ACC 'qa-lookups') of the scale-1 demo source; the assertions read only their rows, or differences the
crafted rows alone explain. Business time zone Australia/Sydney (UTC+11 in November): the seed's as-of,
2026-11-01 00:00 UTC, is 11:00 on 1 November locally; Revizto and ProcessedIssues times are local.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import cloned, dispose_flow_engines, execute, seeded_template
from sqlalchemy.engine import URL

from flows import migrate, quality
from flows.errors import QualityGateFailed
from flows.warehouse_flow import warehouse

pytestmark = pytest.mark.usefixtures("prefect_harness")

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)  # local 2026-11-01 11:00
NOV_2 = NOV_1 + timedelta(hours=23)  # local 2026-11-02 10:00
NOV_3 = datetime(2026, 11, 3, tzinfo=UTC)  # local 2026-11-03 11:00
REVIZTO_PROJECT = 777001
ACC_PROJECT = "qa-lookups"


@pytest.fixture(scope="module")
def template(server_admin_url: URL) -> Iterator[URL]:
    with seeded_template(server_admin_url, "pmw_lookups_template", NOV_1) as url:
        yield url


@pytest.fixture
def source(server_admin_url: URL, template: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    with cloned(server_admin_url, template, monkeypatch) as engine:
        yield engine


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


def revizto_issue(engine: sa.Engine, issue_id: int, status: str, closed_local: str | None = None) -> None:
    """A Revizto issue (local times) created on 20 October, last updated when closed or on 25 October."""
    execute(
        engine,
        """INSERT INTO dbo.revizto_issues (revizto_project_id, revizto_issue_id, issue_number, pm_project_id,
            project_name, title, status, priority, assignee, reporter, created_local, closed_local, updated_local)
        SELECT :p, :i, :i, min(project_id), 'QA Revizto', 'crafted', :status, 'L2 - High', 'qa', 'qa',
            '2026-10-20 09:00', CAST(:closed AS timestamp),
            COALESCE(CAST(:closed AS timestamp), '2026-10-25 09:00') FROM dbo.projects""",
        p=REVIZTO_PROJECT, i=issue_id, status=status, closed=closed_local,
    )  # fmt: skip


def acc_issue(engine: sa.Engine, issue_id: str, status: str, priority: str | None) -> None:
    """An open-or-closed ACC issue (UTC) created on 20 October."""
    execute(
        engine,
        """INSERT INTO dbo.acc_issues (acc_project_id, acc_issue_id, issue_number, pm_project_id, project_name, title,
            status, priority, assigned_to, created_by, created_at, closed_at, updated_at)
        SELECT :p, :i, 1 + (SELECT count(*) FROM dbo.acc_issues WHERE acc_project_id = CAST(:p AS varchar)),
            min(project_id),
            'QA ACC', 'crafted', :status, :priority, 'qa', 'qa', '2026-10-20 02:00',
            CASE WHEN CAST(:closed AS boolean) THEN TIMESTAMP '2026-10-25 02:00' END, '2026-10-25 02:00'
        FROM dbo.projects""",
        p=ACC_PROJECT, i=issue_id, status=status, priority=priority, closed=status.strip().lower() == "closed",
    )  # fmt: skip


def snapshot(engine: sa.Engine) -> dict[tuple[int, str], sa.Row[Any]]:
    """(date key, tracker issue id) -> the fact row, for the crafted issues."""
    found = rows(
        engine,
        """SELECT f.*, k.source_issue_id FROM fact.issue_daily AS f JOIN dim.issue_key AS k ON k.issue_key = f.issue_key
        WHERE k.source_project_id IN (:r, :a)""",
        r=str(REVIZTO_PROJECT), a=ACC_PROJECT,
    )  # fmt: skip
    return {(row.snapshot_date_key, row.source_issue_id): row for row in found}


def map_sk(engine: sa.Engine, table: str, system: str, raw: str) -> int:
    column = "raw_status" if table == "status_map" else "raw_priority"
    sql = f"SELECT {table}_sk FROM dim.{table} WHERE is_current AND source_system = :s AND {column} = :r"
    found = rows(engine, sql, s=system, r=raw)
    return int(found[0][0])


def results(engine: sa.Engine, run_id: int) -> dict[str, sa.Row[Any]]:
    found = rows(engine, "SELECT * FROM ctl.data_quality_result WHERE run_id = :r", r=run_id)
    return {row.check_name: row for row in found}


def last_run(engine: sa.Engine) -> int:
    return int(rows(engine, "SELECT max(run_id) FROM ctl.run")[0][0])


def test_raw_statuses_and_priorities_meet_the_maps_trimmed_and_in_any_case(source: sa.Engine) -> None:
    execute(source, "UPDATE dbo.issue_status_map SET raw_status = 'solved' WHERE source_system = 'Revizto' "
                    "AND raw_status = 'Solved'")  # fmt: skip
    execute(source, "INSERT INTO dbo.issue_priority_map VALUES ('ACC', 'urgent', 'Critical')")
    for number, status in enumerate(("Solved", " SOLVED ", "solved"), start=1):
        revizto_issue(source, number, status, closed_local="2026-10-25 09:00")
    revizto_issue(source, 4, "In Progress")  # the map says 'In progress'
    acc_issue(source, "a1-urgent", "OPEN ", " URGENT ")  # the fallback rule has no 'urgent': only the map does
    acc_issue(source, "a2-closed", "Closed", "urgent")
    acc_issue(source, "a3-weird", "open", "Weird")
    acc_issue(source, "a4-weird", "open", "Weird")

    run = warehouse(as_of=NOV_1)
    day = {issue: row for (_, issue), row in snapshot(source).items()}
    solved = map_sk(source, "status_map", "Revizto", "solved")
    for issue in ("1", "2", "3"):  # `Solved`, ` SOLVED ` and `solved` are one raw status: closed
        assert (day[issue].is_closed, day[issue].is_open, day[issue].status_map_sk) == (True, False, solved), issue
        assert day[issue].resolution_days == 5
    in_progress = map_sk(source, "status_map", "Revizto", "In progress")
    acc_open = map_sk(source, "status_map", "ACC", "open")
    assert (day["4"].is_open, day["4"].status_map_sk) == (True, in_progress)
    assert (day["a1-urgent"].is_open, day["a1-urgent"].status_map_sk) == (True, acc_open)
    assert (day["a1-urgent"].priority, day["a1-urgent"].is_high_priority) == ("Critical", True)
    assert (day["a2-closed"].is_closed, day["a2-closed"].priority) == (True, "Critical")
    assert day["a3-weird"].priority is None  # neither the map nor the fallback rule knows it

    # the checks match the same way: the crafted statuses are all mapped; only 'Weird' lacks a priority entry
    assert results(source, run["run_id"])["status_map_coverage"].status == "pass"
    coverage = next(c for c in quality.load_checks() if c.name == "priority_map_coverage")
    mine = dataclasses.replace(coverage, where=f"source_project_id = '{ACC_PROJECT}'")
    with source.connect() as conn:
        found = quality.run_check(conn, mine, quality.bind_values(NOV_1, run["run_id"]))
    assert (found.failing_count, found.sample_keys) == (2, ["ACC, Weird: 2 rows"])

    # first seen closed: a closed event; a new spelling of the same status is no status change
    events = rows(source, """SELECT e.event_type FROM fact.issue_event AS e JOIN dim.issue_key AS k
        ON k.issue_key = e.issue_key WHERE k.source_project_id = :p AND k.source_issue_id = '1'""",
                  p=str(REVIZTO_PROJECT))  # fmt: skip
    assert sorted(e.event_type for e in events) == ["closed", "created"]
    execute(source, "UPDATE dbo.revizto_issues SET status = 'SOLVED', updated_local = '2026-11-01 10:30' "
                    "WHERE revizto_issue_id = 1 AND revizto_project_id = :p", p=REVIZTO_PROJECT)  # fmt: skip
    warehouse(as_of=NOV_1 + timedelta(hours=1))
    events = rows(source, """SELECT e.event_type FROM fact.issue_event AS e JOIN dim.issue_key AS k
        ON k.issue_key = e.issue_key WHERE k.source_project_id = :p AND k.source_issue_id = '1'""",
                  p=str(REVIZTO_PROJECT))  # fmt: skip
    assert sorted(e.event_type for e in events) == ["closed", "created"]
    assert snapshot(source)[20261101, "1"].is_closed


def test_status_coverage_counts_issues_and_map_conflicts_follow_one_rule(source: sa.Engine) -> None:
    # two map rows of Revizto that differ only by case and spaces, and disagree
    execute(source, "INSERT INTO dbo.issue_status_map VALUES ('Revizto', 'SOLVED ', 'Open', FALSE)")
    revizto_issue(source, 11, "frobnicated")
    revizto_issue(source, 12, "frobnicated")
    revizto_issue(source, 13, " Zapped")
    revizto_issue(source, 14, "solved")

    with pytest.raises(QualityGateFailed, match="status_map_coverage"):
        warehouse(as_of=NOV_1)
    found = results(source, last_run(source))
    coverage = found["status_map_coverage"]
    # issues, not distinct statuses: two carry 'frobnicated', one ' Zapped'; each named with its count
    assert (coverage.status, coverage.failing_count) == ("fail", 3)
    assert coverage.sample_keys.split("; ") == ["Revizto, frobnicated: 2 rows", "Revizto,  Zapped: 1 row"]
    conflicts = found["status_map_conflicts"]
    assert (conflicts.status, conflicts.failing_count, conflicts.sample_keys) == ("fail", 1, "Revizto, solved, 2")
    assert found["priority_map_conflicts"].status == "pass"

    # the facts were published before the checks: the first in code-point order ('SOLVED ' < 'Solved') wins
    day = {issue: row for (_, issue), row in snapshot(source).items()}
    assert (day["14"].is_open, day["14"].status_map_sk) == (True, map_sk(source, "status_map", "Revizto", "SOLVED "))
    assert (day["11"].is_open, day["11"].status_map_sk) == (True, -1)  # unmapped: open, the unknown member


def processed(engine: sa.Engine, issue: str, urgency: str, processed_local: str, version: int) -> None:
    """Upsert the issue's ProcessedIssues row (the source keeps one per issue; re-processing rewrites it)."""
    execute(
        engine,
        """INSERT INTO dbo."ProcessedIssues" (source, source_issue_id, urgency_score, complexity_score, sentiment_score,
            categorization_confidence, discipline_category_id, primary_category_id, processed_at, processing_version)
        SELECT 'ACC', :i, CAST(:u AS numeric), 0.5, -0.25, 0.9, min(category_id) FILTER (WHERE category_level = 1),
            min(category_id) FILTER (WHERE category_level = 2), CAST(:at AS timestamp), :v FROM dbo."IssueCategories"
        ON CONFLICT (source, source_issue_id) DO UPDATE SET urgency_score = EXCLUDED.urgency_score,
            processed_at = EXCLUDED.processed_at, processing_version = EXCLUDED.processing_version""",
        i=issue, u=urgency, at=processed_local, v=version,
    )  # fmt: skip


def analytics(engine: sa.Engine) -> dict[tuple[int, str], tuple[Any, ...]]:
    """(date key, issue) -> (urgency, issue_analytics_sk, complexity, sentiment, confidence, discipline id, primary
    id, the urgency of the dim.issue_analytics version the row links to)."""
    found = rows(engine, """SELECT f.snapshot_date_key, k.source_issue_id, f.urgency_score, f.issue_analytics_sk,
            f.complexity_score, f.sentiment_score, f.categorization_confidence, f.discipline_category_id,
            f.primary_category_id, a.urgency_score AS version_urgency
        FROM fact.issue_daily AS f JOIN dim.issue_key AS k ON k.issue_key = f.issue_key
        LEFT JOIN dim.issue_analytics AS a ON a.issue_analytics_sk = f.issue_analytics_sk AND f.issue_analytics_sk <> -1
        WHERE k.source_project_id = :p""", p=ACC_PROJECT)  # fmt: skip
    return {(r.snapshot_date_key, r.source_issue_id): tuple(r[2:]) for r in found}


def urgency(engine: sa.Engine, date: str) -> sa.Row[Any]:
    return rows(
        engine,
        """SELECT u.* FROM mart.issue_urgency AS u WHERE u.snapshot_date = :d
        AND u.project_id = (SELECT min(project_id) FROM dim.project WHERE project_sk <> -1)""",
        d=date,
    )[0]


def test_each_snapshot_day_carries_the_analytics_in_effect_then(source: sa.Engine) -> None:
    acc_issue(source, "x1-scored", "open", "Major")
    acc_issue(source, "x2-late", "open", "Major")
    processed(source, "x1-scored", "0.3", "2026-11-01 08:00", 1)
    warehouse(as_of=NOV_1)
    first = analytics(source)
    urgent, sk, complexity, sentiment, confidence, discipline, primary, version = first[20261101, "x1-scored"]
    assert (urgent, version, complexity, sentiment, confidence) == (
        Decimal("0.3000"), Decimal("0.3000"), Decimal("0.5000"), Decimal("-0.2500"), Decimal("0.9000"),
    )  # fmt: skip
    assert discipline is not None and primary is not None and sk > 0  # the version's own link
    # no analytics yet: the measures NULL, the link the unknown member
    assert first[20261101, "x2-late"] == (None, -1, None, None, None, None, None, None)

    # re-processed twice on 2 November, with a run between: that day shows the later result
    processed(source, "x1-scored", "0.6", "2026-11-02 09:00", 2)
    warehouse(as_of=NOV_2)
    assert analytics(source)[20261102, "x1-scored"][0] == Decimal("0.6000")
    processed(source, "x1-scored", "0.9", "2026-11-02 10:30", 3)
    warehouse(as_of=NOV_3)
    later = analytics(source)
    assert {day: later[day, "x1-scored"][0] for day in (20261101, 20261102, 20261103)} == {
        20261101: Decimal("0.3000"), 20261102: Decimal("0.9000"), 20261103: Decimal("0.9000"),
    }  # fmt: skip
    assert all(later[day, "x1-scored"][-1] == later[day, "x1-scored"][0] for day in (20261101, 20261102, 20261103))

    # urgency mart: x1 became highly urgent (>= 0.8) on 2 November; nothing else of its project changed
    before, after = urgency(source, "2026-11-01"), urgency(source, "2026-11-02")
    assert after.high_urgency_open - before.high_urgency_open == 1
    assert after.open_issues == before.open_issues and after.scored_open == before.scored_open
    counted = rows(source, """SELECT count(*) FILTER (WHERE f.urgency_score >= 0.8) AS urgent, count(*) AS open_issues
        FROM fact.issue_daily AS f JOIN dim.project AS p ON p.project_sk = f.project_sk
        WHERE f.snapshot_date_key = 20261102 AND f.is_open AND p.project_id = :p""", p=after.project_id)[0]  # fmt: skip
    assert (after.high_urgency_open, after.open_issues) == (counted.urgent, counted.open_issues)

    # a late re-processing: x2's analytics, processed at 20:00 on 1 November, arrive after the 3 November run;
    # the next run recomputes x2 from 1 November on, and nothing else
    processed(source, "x2-late", "0.85", "2026-11-01 20:00", 1)
    late_run = warehouse(as_of=NOV_3)
    late = analytics(source)
    assert {day: late[day, "x2-late"][0] for day in (20261101, 20261102, 20261103)} == {
        20261101: Decimal("0.8500"), 20261102: Decimal("0.8500"), 20261103: Decimal("0.8500"),
    }  # fmt: skip
    written = rows(source, """SELECT rows_inserted, rows_updated, rows_deleted FROM ctl.run_step_table
        WHERE run_id = :r AND step_name = 'warehouse.load_fact_issue_daily' AND table_name = 'fact.issue_daily'""",
                   r=late_run["run_id"])  # fmt: skip
    assert tuple(written[0]) == (0, 3, 0)
    assert {k: v for k, v in late.items() if k[1] == "x1-scored"} == {
        k: v for k, v in later.items() if k[1] == "x1-scored"
    }

    # the revision fills the columns of rows written before it exactly as the loader writes them
    stored = rows(source, "SELECT * FROM fact.issue_daily ORDER BY snapshot_date_key, issue_key")
    dispose_flow_engines()
    migrate.downgrade("0013")
    migrate.upgrade("head")
    assert rows(source, "SELECT * FROM fact.issue_daily ORDER BY snapshot_date_key, issue_key") == stored
