"""Fault injection: the flow's process is killed (SIGKILL, with everything it started) at the start of
every step (every pull, dimension, fact and bridge procedure, the watermark update after the loads, the
quality checks) and in the middle of a pull, a dimension and a fact procedure, and the next run gives the
same whole warehouse (every dim, fact and brg row, surrogate keys and run ids aside) as an uninterrupted
run on the same source. Also: a connection dropped mid-step is retried; a source outage fails clearly.

How a point is reached: a test connection locks the table the run writes (or touches) there, so the run
stalls at exactly that point; the process is killed while it waits, then the lock is released.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import create_database, drop_database, start_run_process, warehouse_at
from dimension_checks import scd2_violations, warehouse_contents
from sqlalchemy.engine import URL

from flows import demo_source, migrate
from flows.pipeline import PUBLISH_STEP, WATERMARK_STEP
from flows.run_log import STALE_RUN_MESSAGE
from flows.sources import SOURCES
from flows.warehouse_flow import warehouse

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
# The run stalls where it first *writes* a table the test holds in EXCLUSIVE mode (reads still pass), or
# first touches one held in ACCESS EXCLUSIVE mode. Every step is reached at its start (the boundary after
# the step before it) through the table it writes first; a few points sit in the middle of a step.
WATERMARKS = WATERMARK_STEP
STEP_TABLES = {
    **{f"pull {source.name}": f"stg.{source.staging_table}" for source in SOURCES},
    "warehouse.load_dim_date": "dim.date",
    **{source.procedure: "dim." + source.procedure.removeprefix("warehouse.load_dim_") for source in SOURCES},
    # add_inferred_members writes only when a key is missing, which this source never has: its start is
    # the end of the last dimension step, and the daily snapshot's start the end of it
    "warehouse.load_fact_issue_daily": "dim.issue_key",
    "warehouse.load_fact_issue_event": "fact.issue_event",
    "warehouse.load_brg_issue_category": "brg.issue_category",
    "warehouse.load_brg_review_issue": "brg.review_issue",
    "warehouse.load_fact_review": "fact.review",
    "warehouse.load_fact_review_event": "fact.review_event",
    "warehouse.load_fact_service_monthly": "fact.service_monthly",
    "warehouse.load_fact_project_monthly": "fact.project_monthly",
    WATERMARKS: "ctl.watermark",
    "quality checks": "ctl.data_quality_result",
}
# point -> (table, lock mode, the step ctl.run_step shows running there)
POINTS = {
    **{f"at the start of {step}": (table, "EXCLUSIVE", step) for step, table in STEP_TABLES.items()},
    "in the middle of the issue dimension procedure (it has read the projects)": (
        "dim.issue", "ACCESS EXCLUSIVE", "warehouse.load_dim_issue"),
    "in the middle of the issue events procedure (it has read the issues)": (
        "fact.issue_event", "ACCESS EXCLUSIVE", "warehouse.load_fact_issue_event"),
}  # fmt: skip

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


def _seed_and_upgrade(url: URL) -> sa.Engine:
    with warehouse_at(url):
        migrate.upgrade("head")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    demo_source.seed(engine, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    return engine


@pytest.fixture(scope="module")
def uninterrupted(server_admin_url: URL) -> Iterator[dict[str, list[tuple[object, ...]]]]:
    """The whole warehouse after one uninterrupted run on the standard seed."""
    url = create_database(server_admin_url, prefix="pmw_uninterrupted")
    try:
        engine = _seed_and_upgrade(url)
        with warehouse_at(url):
            assert warehouse(as_of=AS_OF)["status"] == "success"
        contents = warehouse_contents(engine)
        engine.dispose()
        assert all(contents[t] for t in ("issue", "fact.issue_daily", "fact.issue_event", "brg.review_issue"))
        yield contents
    finally:
        drop_database(server_admin_url, url)


def _wait_for_a_waiter(engine: sa.Engine, table: str, child: subprocess.Popen[bytes], timeout: float = 180) -> None:
    """Until a session waits for the lock on ``table`` (the run has reached the point)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, "the run ended before reaching the point"
        with engine.connect() as conn:
            waiting = conn.execute(
                sa.text("SELECT count(*) FROM pg_locks WHERE relation = CAST(:t AS regclass) AND NOT granted"),
                {"t": table},
            ).scalar_one()
        if waiting:
            return
        time.sleep(0.1)
    raise AssertionError(f"the run never reached the lock on {table}")


@pytest.mark.parametrize("point", list(POINTS))
def test_a_run_killed_at_any_point_is_redone_to_the_same_warehouse(
    point: str,
    upgraded: sa.Engine,
    database_url: URL,
    tmp_path: Path,
    uninterrupted: dict[str, list[tuple[object, ...]]],
) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    table, mode, step = POINTS[point]
    blocker = upgraded.connect()
    blocker.execute(sa.text(f"LOCK TABLE {table} IN {mode} MODE"))
    child = start_run_process(database_url, tmp_path, AS_OF)
    try:
        _wait_for_a_waiter(upgraded, table, child)
        with upgraded.connect() as conn:  # the run is where the point says
            running = conn.execute(sa.text("SELECT step_name FROM ctl.run_step WHERE status = 'running'")).all()
            last_done = conn.execute(sa.text("SELECT step_name FROM ctl.run_step WHERE status = 'success' "
                                              "ORDER BY run_step_id DESC LIMIT 1")).scalar()  # fmt: skip
        assert [r.step_name for r in running] == [step], point
        # at the watermarks every load is done and published, and the checks have not started
        assert step != WATERMARKS or last_done == PUBLISH_STEP, point
        os.killpg(child.pid, signal.SIGKILL)  # the run's process and everything it started
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        blocker.rollback()
        blocker.close()

    result = warehouse(as_of=AS_OF)
    assert result["status"] == "success"
    with upgraded.connect() as conn:
        killed = conn.execute(sa.text("SELECT status, error_text FROM ctl.run ORDER BY run_id LIMIT 1")).one()
    assert (killed.status, killed.error_text) == ("failed", STALE_RUN_MESSAGE.format(run_id=result["run_id"]))
    assert scd2_violations(upgraded) == {}
    contents = warehouse_contents(upgraded)
    assert set(contents) == set(uninterrupted)
    for table_name, rows in uninterrupted.items():
        assert contents[table_name] == rows, f"{point}: {table_name} differs from the uninterrupted run"


def test_a_connection_dropped_mid_step_is_retried_and_the_run_succeeds(
    upgraded: sa.Engine, database_url: URL, tmp_path: Path, uninterrupted: dict[str, list[tuple[object, ...]]]
) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    blocker = upgraded.connect()
    blocker.execute(sa.text("LOCK TABLE dim.issue IN ACCESS EXCLUSIVE MODE"))
    child = start_run_process(database_url, tmp_path, AS_OF, capture=True)
    try:
        _wait_for_a_waiter(upgraded, "dim.issue", child)
        with upgraded.connect() as conn:  # the server drops the run's connection in the middle of the step
            dropped = conn.execute(sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE relation = 'dim.issue'::regclass "
                "AND NOT granted")).scalar_one()  # fmt: skip
        assert dropped == 1
    finally:
        blocker.rollback()
        blocker.close()
    output, _ = child.communicate(timeout=300)
    assert child.returncode == 0, output.decode()
    with upgraded.connect() as conn:
        run = conn.execute(sa.text("SELECT status FROM ctl.run")).scalars().all()
    assert run == ["success"]
    assert warehouse_contents(upgraded) == uninterrupted


def test_a_source_outage_fails_the_run_clearly_and_moves_nothing(
    upgraded: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    assert warehouse(as_of=AS_OF)["status"] == "success"
    with upgraded.connect() as conn:
        marks = conn.execute(sa.text("SELECT * FROM ctl.watermark ORDER BY 1, 2")).all()
    before = warehouse_contents(upgraded)
    # the operational database is down: nothing listens where it should be
    monkeypatch.setenv("PMW_SOURCE_URL", "postgresql+psycopg://reader:s3cret-pw@127.0.0.1:9/ProjectManagement")
    with pytest.raises(Exception) as raised:
        warehouse(as_of=datetime(2026, 11, 2, tzinfo=UTC))
    with upgraded.connect() as conn:
        failed = conn.execute(sa.text("SELECT status, error_text FROM ctl.run ORDER BY run_id DESC LIMIT 1")).one()
        assert conn.execute(sa.text("SELECT * FROM ctl.watermark ORDER BY 1, 2")).all() == marks
    assert failed.status == "failed"
    assert failed.error_text.startswith("SourceUnavailable: the source database at postgresql+psycopg://reader:***@")
    assert "could not be reached" in failed.error_text and "PMW_SOURCE_URL" in failed.error_text
    assert "s3cret-pw" not in failed.error_text
    assert "s3cret-pw" not in str(raised.value)
    assert warehouse_contents(upgraded) == before
