"""A run killed mid-way is marked failed by the next run, which reaches the same dimension state as an
uninterrupted run; the streamed (two-database) pull builds the same dimensions as the in-database one."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from conftest import create_database, drop_database, start_run_process
from dimension_checks import dimension_contents, scd2_violations
from sqlalchemy.engine import URL

from flows import demo_source, migrate
from flows.run_log import STALE_RUN_MESSAGE
from flows.warehouse_flow import warehouse

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


@pytest.fixture
def reference(server_admin_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[tuple[object, ...]]]]:
    """Dimensions after one uninterrupted run on the standard seed, in a database of their own."""
    url = create_database(server_admin_url, prefix="pmw_reference")
    with monkeypatch.context() as patch:
        patch.setenv("PMW_WAREHOUSE_URL", url.render_as_string(hide_password=False))
        migrate.upgrade("head")
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        demo_source.seed(engine, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
        assert warehouse(as_of=AS_OF)["status"] == "success"
        contents = dimension_contents(engine)
        engine.dispose()
    try:
        yield contents
    finally:
        drop_database(server_admin_url, url)


def _wait_for(engine: sa.Engine, sql: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(sa.text(sql)).scalar():
                return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for: {sql}")


def test_a_killed_run_is_marked_failed_and_the_next_run_converges(
    upgraded: sa.Engine,
    database_url: URL,
    tmp_path,
    reference,  # type: ignore[no-untyped-def]
) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    blocker = upgraded.connect()
    blocker.execute(sa.text("LOCK TABLE dim.issue IN ACCESS EXCLUSIVE MODE"))  # the run will stall here
    child = start_run_process(database_url, tmp_path, AS_OF)
    try:
        _wait_for(
            upgraded,
            "SELECT count(*) FROM ctl.run_step WHERE step_name = 'warehouse.load_dim_issue' AND status = 'running'",
        )
        os.killpg(child.pid, signal.SIGKILL)  # the run's process and everything it started
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        blocker.rollback()
        blocker.close()
    with upgraded.connect() as conn:
        assert conn.execute(sa.text("SELECT status FROM ctl.run")).scalars().all() == ["running"]
        assert conn.execute(sa.text("SELECT count(*) FROM ctl.watermark")).scalar() == 0  # nothing moved

    result = warehouse(as_of=AS_OF)
    assert result["status"] == "success"
    with upgraded.connect() as conn:
        killed = conn.execute(sa.text("SELECT status, error_text FROM ctl.run ORDER BY run_id LIMIT 1")).one()
    assert killed.status == "failed"
    assert killed.error_text == STALE_RUN_MESSAGE.format(run_id=result["run_id"])
    assert scd2_violations(upgraded) == {}
    assert dimension_contents(upgraded) == reference


def test_a_source_in_another_database_is_streamed_and_gives_the_same_dimensions(
    upgraded: sa.Engine,
    server_admin_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    reference,  # type: ignore[no-untyped-def]
) -> None:
    source_url = create_database(server_admin_url, prefix="pmw_source")
    try:
        source = sa.create_engine(source_url, poolclass=sa.pool.NullPool)
        demo_source.seed(source, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
        source.dispose()
        monkeypatch.setenv("PMW_SOURCE_URL", source_url.render_as_string(hide_password=False))
        assert warehouse(as_of=AS_OF)["status"] == "success"
        with upgraded.connect() as conn:
            assert conn.execute(sa.text("SELECT to_regclass('dbo.projects')")).scalar() is None  # really apart
            read = conn.execute(sa.text("SELECT sum(rows_read) FROM ctl.run_source")).scalar()
        assert read > 10_000
        assert dimension_contents(upgraded) == reference
    finally:
        drop_database(server_admin_url, source_url)
