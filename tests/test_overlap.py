"""Overlap with migrations: a run started while a migration holds the warehouse waits for it, and refuses
(writing nothing, saying what to do) if it does not finish in time or left the warehouse at another
revision than the code's. Two runs at once: see test_dimensions.py (the second is skipped)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from flows import demo_source, migrate
from flows.errors import MigrationInProgress
from flows.warehouse_flow import warehouse

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
HOLD_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('pmw:migrations'))"

pytestmark = pytest.mark.usefixtures("prefect_harness")


def runs(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM ctl.run")).scalar_one())


def test_a_run_refuses_while_a_migration_holds_the_warehouse(
    upgraded: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    monkeypatch.setenv("PMW_MIGRATION_WAIT_SECONDS", "1")
    with upgraded.connect() as migration, migration.begin():
        migration.exec_driver_sql(HOLD_MIGRATION_LOCK)  # as `pmw upgrade` does for its whole transaction
        started = time.monotonic()
        with pytest.raises(MigrationInProgress, match="a migration of this warehouse is in progress") as raised:
            warehouse(as_of=AS_OF)
        assert time.monotonic() - started >= 1  # it waited first
    assert "without writing anything" in str(raised.value) and "PMW_MIGRATION_WAIT_SECONDS" in str(raised.value)
    assert runs(upgraded) == 0
    assert warehouse(as_of=AS_OF)["status"] == "success"  # the lock is free again


def test_a_run_waits_for_a_migration_that_finishes(upgraded: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    monkeypatch.setenv("PMW_MIGRATION_WAIT_SECONDS", "60")
    holding, release = threading.Event(), threading.Event()

    def migrate_for_a_while() -> None:
        with upgraded.connect() as migration, migration.begin():
            migration.exec_driver_sql(HOLD_MIGRATION_LOCK)
            holding.set()
            release.wait(timeout=60)

    migration = threading.Thread(target=migrate_for_a_while)
    migration.start()
    holding.wait(timeout=30)
    threading.Timer(2, release.set).start()
    try:
        started = time.monotonic()
        assert warehouse(as_of=AS_OF)["status"] == "success"
        assert time.monotonic() - started >= 2
    finally:
        release.set()
        migration.join()


def test_a_run_refuses_a_warehouse_at_another_revision(upgraded: sa.Engine) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    migrate.downgrade("-1")
    with pytest.raises(MigrationInProgress, match=r"is at revision \w+ but this code needs \w+.*pmw upgrade"):
        warehouse(as_of=AS_OF)
    assert runs(upgraded) == 0
