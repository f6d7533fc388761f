"""Key-set reconciliation of cursor sources and a circuit breaker that fits small tables (issue #13, points 3
and 7), through the Prefect flow on the real embedded server: an issue moved to another tracker project and a
Revizto issue removed from the source are closed as deleted at the source; the every-N-runs setting is
honoured and explained in ctl; a mass vanish trips the breaker until --force-deletes; below
PMW_MAX_DELETE_SHARE_MIN_ROWS live rows only an emptied table trips it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import cloned, execute, loaded_template
from sqlalchemy.engine import URL

from flows.sources import SOURCES
from flows.warehouse_flow import warehouse

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)  # the seed's anchor
SOURCE_NOW = AS_OF.replace(tzinfo=None)
LATER = AS_OF + timedelta(hours=2)
FIRST_REVIZTO_ISSUE = sa.text("SELECT revizto_project_id::text AS p, revizto_issue_id::text AS i "
                              "FROM dbo.revizto_issues WHERE NOT is_deleted ORDER BY 2 LIMIT 1")  # fmt: skip

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


@pytest.fixture(scope="module")
def loaded(server_admin_url: URL) -> Iterator[URL]:
    """A warehouse after one successful run at AS_OF over the seeded demo source, to clone."""
    with loaded_template(server_admin_url, "pmw_keys_template", AS_OF) as url:
        yield url


@pytest.fixture
def clone(server_admin_url: URL, loaded: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    with cloned(server_admin_url, loaded, monkeypatch) as engine:
        yield engine


def one(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def meaning(engine: sa.Engine, run_id: int, step: str, name: str) -> int | None:
    return one(engine, "SELECT value FROM ctl.run_step_meaning WHERE run_id = :r AND step_name = :s "
               "AND meaning = :m", r=run_id, s=step, m=name)  # fmt: skip


def current_issue(engine: sa.Engine, source: str, project: str, issue: str) -> sa.Row[Any] | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT is_deleted, valid_from, run_id FROM dim.issue WHERE is_current AND source_system = :s "
                    "AND source_project_id = :p AND source_issue_id = :i"), {"s": source, "p": project, "i": issue},
        ).one_or_none()  # fmt: skip


def snapshot_and_live_source_issues(engine: sa.Engine, as_of: datetime) -> tuple[int, int]:
    """The as-of day's snapshot rows, and the issues the source has and has not deleted."""
    snapshot = one(engine, "SELECT count(*) FROM fact.issue_daily WHERE snapshot_date_key = "
                   "to_char((:a AT TIME ZONE 'Australia/Sydney')::date, 'YYYYMMDD')::integer", a=as_of)  # fmt: skip
    live = one(engine, 'SELECT count(*) FROM dbo."vw_ProjectManagement_AllIssues" WHERE NOT is_deleted')
    return snapshot, live


def test_every_cursor_source_has_a_key_set_table_and_its_dimension_key(clone: sa.Engine) -> None:
    from flows import key_sets

    cursor_sources = [s for s in SOURCES if s.strategy == "cursor"]
    assert {s.name for s in cursor_sources} == {"issue_categories", "issues", "processed_issues"}
    for source in cursor_sources:
        assert one(clone, "SELECT to_regclass(:t) IS NOT NULL", t=f"stg.{key_sets.key_table(source)}")
        keys = source.dimension_key or source.business_key
        dimension = key_sets.dimension_of(source)
        found = {column["name"] for column in sa.inspect(clone).get_columns(dimension, schema="dim")}
        assert set(keys) <= found and len(keys) == len(source.business_key)


def test_an_issue_moved_to_another_tracker_project_is_closed_under_its_old_key(clone: sa.Engine) -> None:
    moved = sa.text("""SELECT a.acc_project_id, a.acc_issue_id, tp.source_project_id AS target, tp.pm_project_id,
        tp.project_name FROM dbo.acc_issues AS a JOIN pmw_demo.tracker_project AS tp ON tp.source = 'ACC'
        AND tp.source_project_id <> a.acc_project_id WHERE NOT a.is_deleted AND a.closed_at IS NULL
        ORDER BY a.acc_issue_id, tp.source_project_id LIMIT 1""")
    with clone.connect() as conn:
        issue = conn.execute(moved).one()
    assert current_issue(clone, "ACC", issue.acc_project_id, issue.acc_issue_id).is_deleted is False  # type: ignore[union-attr]
    # the tracker moves it: a new source_project_id (and its project), the same issue otherwise
    execute(clone, "UPDATE dbo.acc_issues SET acc_project_id = :t, pm_project_id = :pm, project_name = :n, "
            "updated_at = :u WHERE acc_issue_id = :i", t=issue.target, pm=issue.pm_project_id, n=issue.project_name,
            u=SOURCE_NOW + timedelta(hours=1), i=issue.acc_issue_id)  # fmt: skip

    result = warehouse(as_of=LATER)
    assert result["status"] == "success"
    old = current_issue(clone, "ACC", issue.acc_project_id, issue.acc_issue_id)
    new = current_issue(clone, "ACC", issue.target, issue.acc_issue_id)
    assert old is not None and old.is_deleted and old.valid_from == LATER and old.run_id == result["run_id"]
    assert new is not None and not new.is_deleted
    assert meaning(clone, result["run_id"], "warehouse.load_dim_issue", "vanished_at_source") == 1
    assert meaning(clone, result["run_id"], "warehouse.load_dim_issue", "deleted_at_source") == 1
    keys = one(clone, 'SELECT count(*) FROM dbo."vw_ProjectManagement_AllIssues"')
    assert meaning(clone, result["run_id"], "pull issues", "key_set_read") == keys
    # the day's snapshot has exactly the source's live issues (it had one too many before)
    snapshot, live = snapshot_and_live_source_issues(clone, LATER)
    assert snapshot == live


def test_a_revizto_issue_removed_from_the_source_is_closed_as_deleted(clone: sa.Engine) -> None:
    with clone.connect() as conn:
        gone = conn.execute(FIRST_REVIZTO_ISSUE).one()
    execute(clone, "DELETE FROM dbo.revizto_issues WHERE revizto_issue_id = CAST(:i AS bigint)", i=gone.i)
    result = warehouse(as_of=LATER)
    assert result["status"] == "success"
    closed = current_issue(clone, "Revizto", gone.p, gone.i)
    assert closed is not None and closed.is_deleted and closed.valid_from == LATER
    assert (
        one(clone, "SELECT count(*) FROM dim.issue WHERE source_system = 'Revizto' AND source_issue_id = :i", i=gone.i)
        == 2
    )  # fmt: skip  (the live version, closed, and its deleted successor)
    assert meaning(clone, result["run_id"], "warehouse.load_dim_issue", "vanished_at_source") == 1
    snapshot, live = snapshot_and_live_source_issues(clone, LATER)
    assert snapshot == live
    # nothing else vanished: the other cursor sources' keys are all still there
    for step in ("warehouse.load_dim_issue_analytics", "warehouse.load_dim_issue_category"):
        assert meaning(clone, result["run_id"], step, "vanished_at_source") == 0


def test_a_removed_issue_that_comes_back_unchanged_is_live_again(clone: sa.Engine) -> None:
    """Its row is the one loaded before (same hash, cursor inside the look-back): without forgetting it in
    ctl.loaded_row, the pull would drop it as unchanged and its key would stay deleted."""
    newest = sa.text("SELECT revizto_project_id::text AS p, revizto_issue_id::text AS i FROM dbo.revizto_issues "
                     "WHERE NOT is_deleted ORDER BY updated_local DESC, revizto_issue_id LIMIT 1")  # fmt: skip
    with clone.begin() as conn:
        back = conn.execute(newest).one()
        conn.execute(sa.text("CREATE TABLE public.kept_issue AS SELECT * FROM dbo.revizto_issues "
                             "WHERE revizto_issue_id = CAST(:i AS bigint)"), {"i": back.i})  # fmt: skip
        conn.execute(sa.text("DELETE FROM dbo.revizto_issues WHERE revizto_issue_id = CAST(:i AS bigint)"),
                     {"i": back.i})  # fmt: skip
    assert warehouse(as_of=LATER)["status"] == "success"
    assert current_issue(clone, "Revizto", back.p, back.i).is_deleted  # type: ignore[union-attr]

    execute(clone, "INSERT INTO dbo.revizto_issues SELECT * FROM public.kept_issue")
    result = warehouse(as_of=LATER + timedelta(hours=1))
    assert result["status"] == "success"
    again = current_issue(clone, "Revizto", back.p, back.i)
    assert again is not None and not again.is_deleted and again.run_id == result["run_id"]
    snapshot, live = snapshot_and_live_source_issues(clone, LATER + timedelta(hours=1))
    assert snapshot == live


def test_the_key_set_is_read_every_n_runs_and_ctl_says_so(clone: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMW_KEY_RECONCILIATION_EVERY_RUNS", "3")  # the first run (the template's) read it
    with clone.connect() as conn:
        gone = conn.execute(FIRST_REVIZTO_ISSUE).one()
    execute(clone, "DELETE FROM dbo.revizto_issues WHERE revizto_issue_id = CAST(:i AS bigint)", i=gone.i)
    for hours, to_go in ((1, 2), (2, 1)):
        result = warehouse(as_of=AS_OF + timedelta(hours=hours))
        assert result["status"] == "success"
        assert meaning(clone, result["run_id"], "pull issues", "key_set_runs_to_go") == to_go
        assert meaning(clone, result["run_id"], "pull issues", "key_set_read") is None
        assert meaning(clone, result["run_id"], "warehouse.load_dim_issue", "vanished_at_source") is None
        assert current_issue(clone, "Revizto", gone.p, gone.i).is_deleted is False  # type: ignore[union-attr]
    result = warehouse(as_of=AS_OF + timedelta(hours=3))  # the third load since: due
    assert meaning(clone, result["run_id"], "pull issues", "key_set_read") > 0  # type: ignore[operator]
    assert meaning(clone, result["run_id"], "warehouse.load_dim_issue", "vanished_at_source") == 1
    assert current_issue(clone, "Revizto", gone.p, gone.i).is_deleted is True  # type: ignore[union-attr]


def test_a_mass_vanish_trips_the_breaker_until_forced(clone: sa.Engine) -> None:
    live = one(clone, "SELECT count(*) FROM dim.issue WHERE is_current AND NOT is_deleted AND issue_sk <> -1")
    removed = one(clone, "SELECT count(*) FROM dbo.revizto_issues WHERE NOT is_deleted")
    assert removed > 0.25 * live  # a Revizto outage returns no rows: more than the limit would close
    execute(clone, "DELETE FROM dbo.revizto_issues")
    with pytest.raises(Exception, match=r"circuit breaker: dim\.issue would close \d+ of its \d+ live rows"):
        warehouse(as_of=LATER)
    assert one(clone, "SELECT count(*) FROM dim.issue WHERE is_current AND is_deleted AND valid_from = :a",
               a=LATER) == 0  # fmt: skip
    result = warehouse(as_of=LATER, force_deletes=True)
    assert result["status"] == "success"
    assert meaning(clone, result["run_id"], "warehouse.load_dim_issue", "vanished_at_source") == removed
    snapshot, source_live = snapshot_and_live_source_issues(clone, LATER)
    assert snapshot == source_live


# --- point 7: the share applies from PMW_MAX_DELETE_SHARE_MIN_ROWS live rows (default 20) ---------------


def clients_in_all(engine: sa.Engine, total: int) -> None:
    """Add unreferenced clients (ids from 1001) until the source has ``total``."""
    have = one(engine, "SELECT count(*) FROM dbo.clients")
    execute(engine, "INSERT INTO dbo.clients (client_id, client_name) SELECT 1000 + g, 'Client ' || g "
            "FROM generate_series(1, :n) AS g", n=total - have)  # fmt: skip


@pytest.mark.parametrize(("live", "trips"), [(19, False), (20, True)])
def test_six_deleted_clients_trip_the_breaker_only_from_20_live_rows(clone: sa.Engine, live: int, trips: bool) -> None:
    clients_in_all(clone, live)
    assert warehouse(as_of=AS_OF + timedelta(hours=1))["status"] == "success"
    execute(
        clone,
        "DELETE FROM dbo.clients WHERE client_id IN (SELECT client_id FROM dbo.clients "
        "WHERE client_id > 1000 ORDER BY client_id LIMIT 6)",
    )  # 6 of 19 (32 %) or of 20 (30 %): over 25 %
    if trips:
        with pytest.raises(Exception, match=r"circuit breaker: dim\.client would close 6 of its 20 live rows"):
            warehouse(as_of=LATER)
        assert one(clone, "SELECT count(*) FROM dim.client WHERE is_current AND is_deleted") == 0
    else:
        assert warehouse(as_of=LATER)["status"] == "success"
        assert one(clone, "SELECT count(*) FROM dim.client WHERE is_current AND is_deleted") == 6


def test_one_of_three_clients_may_go_but_not_all_three(clone: sa.Engine) -> None:
    # the real application's handful of clients: three, every project with the first
    execute(clone, "UPDATE dbo.projects SET client_id = (SELECT min(client_id) FROM dbo.clients)")
    execute(clone, "DELETE FROM dbo.clients WHERE client_id NOT IN (SELECT client_id FROM dbo.clients "
            "ORDER BY client_id LIMIT 3)")  # fmt: skip
    assert warehouse(as_of=AS_OF + timedelta(hours=1))["status"] == "success"
    assert one(clone, "SELECT count(*) FROM dim.client WHERE is_current AND NOT is_deleted AND client_sk <> -1") == 3
    execute(clone, "CREATE TABLE pmw_demo.saved_clients AS SELECT * FROM dbo.clients")
    execute(clone, "UPDATE dbo.projects SET client_id = NULL")
    execute(clone, "DELETE FROM dbo.clients")  # all three gone: an emptied table
    with pytest.raises(Exception, match=r"circuit breaker: dim\.client would close 3 of its 3 live rows"):
        warehouse(as_of=LATER)
    execute(clone, "INSERT INTO dbo.clients SELECT * FROM pmw_demo.saved_clients WHERE client_id <> "
            "(SELECT max(client_id) FROM pmw_demo.saved_clients)")  # fmt: skip
    assert warehouse(as_of=LATER)["status"] == "success"  # one of three (33 %) passes
    assert one(clone, "SELECT count(*) FROM dim.client WHERE is_current AND is_deleted AND valid_from = :a",
               a=LATER) == 1  # fmt: skip
