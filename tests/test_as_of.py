"""As-of, not "newest row": the marts and monthly facts that mean "latest" take the latest published run's
as-of date, correct when no live issue is left on it; a stale snapshot fails the freshness gate; an as-of
earlier than the last published run's is refused before anything is read; a run that names no as-of
follows the demo source's simulated clock."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from flows import demo_source
from flows.errors import AsOfBehind, QualityGateFailed
from flows.warehouse_flow import warehouse

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)  # 11:00 on 1 November in Sydney
NEXT_DAY = AS_OF + timedelta(days=1)  # 11:00 on 2 November
SYDNEY = ZoneInfo("Australia/Sydney")

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


def scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def execute(engine: sa.Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(sql), params)


@pytest.fixture
def seeded(upgraded: sa.Engine) -> sa.Engine:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    return upgraded


def delete_every_issue(engine: sa.Engine, at: datetime) -> None:
    """Both trackers delete every issue at instant ``at`` (ACC stamps UTC, Revizto Sydney wall time)."""
    utc, local = at.replace(tzinfo=None), at.astimezone(SYDNEY).replace(tzinfo=None)
    execute(engine, "UPDATE dbo.acc_issues SET is_deleted = TRUE, deleted_at = :t, updated_at = :t", t=utc)
    execute(engine, "UPDATE dbo.revizto_issues SET is_deleted = TRUE, deleted_local = :t, updated_local = :t",
            t=local)  # fmt: skip


def test_a_day_with_no_live_issue_shows_that_day_not_the_previous_one(seeded: sa.Engine) -> None:
    assert warehouse(as_of=AS_OF)["status"] == "success"
    open_before = scalar(seeded, "SELECT sum(open_issues) FROM mart.issue_backlog_age")
    assert open_before > 1000
    delete_every_issue(seeded, AS_OF + timedelta(hours=20))  # 07:00 on 2 November
    assert warehouse(as_of=NEXT_DAY)["status"] == "success"

    assert scalar(seeded, "SELECT count(*) FROM fact.issue_daily WHERE snapshot_date_key = 20261102") == 0
    assert scalar(seeded, "SELECT count(*) FROM fact.issue_daily WHERE snapshot_date_key = 20261101") > 1000
    # the backlog is that of 2 November: none, not 1 November's
    assert rows(seeded, "SELECT * FROM mart.issue_backlog_age") == []
    # November's project months hold 2 November's state: no issue open, the projects still listed
    november = rows(seeded, "SELECT project_id, issues_total, issues_open FROM fact.project_monthly "
                            "WHERE month_date_key = 20261101")  # fmt: skip
    live_projects = scalar(seeded, "SELECT count(*) FROM dim.project WHERE is_current AND NOT is_deleted "
                                   "AND project_sk <> -1")  # fmt: skip
    assert len(november) >= live_projects and {(r.issues_total, r.issues_open) for r in november} == {(0, 0)}
    card = rows(seeded, "SELECT month, issues_open FROM mart.project_scorecard")
    assert len(card) == live_projects and {(c.month.isoformat(), c.issues_open) for c in card} == {("2026-11-01", 0)}


def test_the_scorecard_shows_the_as_of_month_even_when_a_later_month_has_rows(seeded: sa.Engine) -> None:
    assert warehouse(as_of=AS_OF)["status"] == "success"
    # rows of a month after the as-of month (a run asked for on purpose at a later as-of, then the
    # warehouse's as-of moved back): the scorecard follows the published as-of, not the newest month
    assert warehouse(as_of=datetime(2026, 12, 2, tzinfo=UTC))["status"] == "success"
    assert scalar(seeded, "SELECT DISTINCT month FROM mart.project_scorecard").isoformat() == "2026-12-01"
    result = warehouse(as_of=NEXT_DAY, allow_earlier_as_of=True)
    assert result["status"] in ("success", "failed")
    assert scalar(seeded, "SELECT DISTINCT month FROM mart.project_scorecard").isoformat() == "2026-11-01"
    assert scalar(seeded, "SELECT DISTINCT snapshot_date FROM mart.issue_backlog_age").isoformat() == "2026-11-02"


def drop_inserts(engine: sa.Engine, table: str, when: str) -> None:
    """The test's trigger drops, silently, the rows a step inserts into ``table`` that match ``when``."""
    execute(engine, """CREATE FUNCTION public.pmw_test_drop() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RETURN NULL; END $$""")  # fmt: skip
    execute(engine, f"""CREATE TRIGGER pmw_test_drop BEFORE INSERT ON {table} FOR EACH ROW
        WHEN ({when}) EXECUTE FUNCTION public.pmw_test_drop()""")  # fmt: skip


def test_a_snapshot_that_wrote_nothing_for_the_as_of_date_fails_the_freshness_gate(seeded: sa.Engine) -> None:
    assert warehouse(as_of=AS_OF)["status"] == "success"
    drop_inserts(seeded, "fact.issue_daily", "NEW.snapshot_date_key = 20261102")  # nothing for 2 November
    with pytest.raises(QualityGateFailed, match="fact_issue_daily_fresh"):
        warehouse(as_of=NEXT_DAY)
    result = rows(seeded, "SELECT r.status, q.status AS check_status, q.severity, q.sample_keys FROM ctl.run AS r "
                          "JOIN ctl.data_quality_result AS q ON q.run_id = r.run_id "
                          "WHERE q.check_name = 'fact_issue_daily_fresh' ORDER BY r.run_id")  # fmt: skip
    assert [(r.status, r.check_status, r.severity) for r in result] == [("success", "pass", "error"),
                                                                       ("failed", "fail", "error")]  # fmt: skip
    # it names the date expected and the newest date found
    assert result[-1].sample_keys.startswith("fact.issue_daily, 20261102, 20261101, ")


def test_a_monthly_fact_without_the_as_of_month_fails_the_freshness_gate(seeded: sa.Engine) -> None:
    assert warehouse(as_of=AS_OF)["status"] == "success"
    drop_inserts(seeded, "fact.project_monthly", "NEW.month_date_key = 20261201")  # nothing for December
    with pytest.raises(QualityGateFailed, match="fact_monthly_fresh"):
        warehouse(as_of=datetime(2026, 12, 2, tzinfo=UTC))
    sample = scalar(seeded, "SELECT sample_keys FROM ctl.data_quality_result WHERE check_name = 'fact_monthly_fresh' "
                            "AND status = 'fail'")  # fmt: skip
    assert sample.startswith("fact.project_monthly, 20261201, 20261101, ")


def test_an_as_of_behind_the_last_run_stops_before_anything_is_read(seeded: sa.Engine) -> None:
    assert warehouse(as_of=NEXT_DAY)["status"] == "success"
    before = {
        table: rows(seeded, f"SELECT * FROM {table}")
        for table in ("ctl.run", "ctl.run_step", "ctl.watermark", "ctl.run_source", "stg.issues", "fact.issue_daily")
    }
    with pytest.raises(AsOfBehind) as refused:
        warehouse(as_of=AS_OF)
    message = str(refused.value)
    assert "2026-11-01 00:00:00+00:00" in message and "2026-11-02 00:00:00+00:00" in message
    assert "--backfill-from" in message and "--allow-earlier-as-of" in message
    assert {table: rows(seeded, f"SELECT * FROM {table}") for table in before} == before  # nothing read or written
    # the same as-of again is no step back; asked for on purpose, an earlier one runs (1 November lies before
    # the series' first snapshot date, which only a backfill extends: the freshness gate says so)
    assert warehouse(as_of=NEXT_DAY)["status"] == "success"
    with pytest.raises(QualityGateFailed, match="fact_issue_daily_fresh"):
        warehouse(as_of=AS_OF, allow_earlier_as_of=True)
    assert scalar(seeded, "SELECT as_of_at FROM ctl.run ORDER BY run_id DESC LIMIT 1") == AS_OF


def test_a_run_that_names_no_as_of_follows_the_demo_clock(seeded: sa.Engine) -> None:
    # the demo's clock is a day ahead of this (simulated) "now": runs without an as-of follow the clock
    first = warehouse()
    clock = demo_source.clock(seeded)
    assert scalar(seeded, "SELECT as_of_at FROM ctl.run WHERE run_id = :r", r=first["run_id"]) == clock.replace(
        tzinfo=UTC
    )
    demo_source.advance(seeded, days=1)
    second = warehouse()
    assert second["status"] == "success"
    assert scalar(seeded, "SELECT max(as_of_at) FROM ctl.publication") == (clock + timedelta(days=1)).replace(
        tzinfo=UTC
    )
    assert scalar(seeded, "SELECT max(snapshot_date_key) FROM fact.issue_daily") == 20261102


def test_pmw_run_with_no_as_of_after_the_demo_picks_up_the_new_day(
    seeded: sa.Engine, database_url: URL, tmp_path: Path
) -> None:
    env = {"PMW_WAREHOUSE_URL": database_url.render_as_string(hide_password=False),
           "PREFECT_HOME": str(tmp_path / "prefect-child")}  # fmt: skip
    import os

    def pmw(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "flows.cli", *args], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=600)  # fmt: skip

    assert pmw("run").returncode == 0
    demo_source.advance(seeded, days=1)
    done = pmw("run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert scalar(seeded, "SELECT max(snapshot_date_key) FROM fact.issue_daily") == 20261102
    assert scalar(seeded, "SELECT count(*) FROM ctl.run WHERE status = 'success'") == 2
