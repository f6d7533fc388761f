"""A migration that loses a deadlock: the server rolls its transaction back whole, and the upgrade runs it
again and finishes; any other error stops the upgrade at once with nothing of it kept.

The deadlock is a real one, made by a session of the test's own: it holds the row of alembic_version the
upgrade must update, waits until the upgrade is blocked on it, then asks for the migration lock the
upgrade holds (as autovacuum did in CI: it held a table lock the upgrade needed while it waited for a
catalog row the upgrade had changed).
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from conftest import REPO_ROOT
from schema_snapshot import snapshot

from flows import migrate
from flows.database import MIGRATION_LOCK


def _revision_before_head() -> str:
    script = ScriptDirectory(str(REPO_ROOT / "migrations"))
    return [r.revision for r in script.walk_revisions("base", "heads")][1]


def _wait_until_blocked_on_a_lock(
    watcher: sa.Connection, holder_pid: int, worker: threading.Thread, failures: list[BaseException]
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and worker.is_alive():
        blocked = watcher.execute(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND :holder = ANY(pg_blocking_pids(pid))"),
            {"holder": holder_pid},
        ).scalar()  # fmt: skip
        watcher.rollback()  # pg_stat_activity is read once per transaction: the next look needs a new one
        if blocked:
            return
        time.sleep(0.02)
    sessions = watcher.execute(
        sa.text("SELECT pid, state, wait_event_type, wait_event, pg_blocking_pids(pid), left(query, 80) "
                "FROM pg_stat_activity WHERE datname = current_database()")
    ).all()  # fmt: skip
    raise AssertionError(f"the upgrade never waited on session {holder_pid}: {failures or sessions}")


def test_an_upgrade_chosen_as_a_deadlocks_victim_is_run_again_and_finishes(
    engine: sa.Engine, database_url: sa.URL, caplog: pytest.LogCaptureFixture
) -> None:
    migrate.upgrade(_revision_before_head())
    with engine.begin() as conn:
        # the upgrade checks for the deadlock 3 s into its wait, the test's session only after a minute:
        # by then both wait, so the upgrade is the victim whatever the machine's load
        conn.exec_driver_sql(f"ALTER DATABASE {database_url.database} SET deadlock_timeout = '3s'")
    failures: list[BaseException] = []
    caplog.set_level(logging.WARNING, logger="pmw.migrate")

    def upgrade() -> None:
        try:
            migrate.upgrade("head")
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    other = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with other.connect() as session, engine.connect() as watcher:
        session.exec_driver_sql("SET deadlock_timeout = '60s'")
        pid = session.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        session.exec_driver_sql("UPDATE alembic_version SET version_num = version_num")  # holds the row
        worker = threading.Thread(target=upgrade)
        worker.start()
        _wait_until_blocked_on_a_lock(watcher, int(pid or 0), worker, failures)
        # the upgrade waits for this session's row; this session now waits for the upgrade's lock
        session.execute(sa.text("SELECT pg_advisory_xact_lock_shared(hashtext(:lock))"), {"lock": MIGRATION_LOCK})
        session.commit()
        worker.join(timeout=120)
    other.dispose()

    assert not worker.is_alive() and not failures, failures
    assert snapshot(engine)["version"] == [(migrate.heads()[0],)]
    # the warning pmw's (or alembic.ini's) logging shows the user; here pmw.migrate's record
    retries = [record.getMessage() for record in caplog.records if "deadlock's victim" in record.getMessage()]
    assert len(retries) == 1 and "DeadlockDetected" in retries[0] and "attempt 2 of 4" in retries[0], retries


def test_an_upgrade_that_fails_otherwise_is_not_run_again_and_keeps_nothing(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        # a database object of the test's own: every DDL statement counts itself, then the third one fails
        conn.exec_driver_sql("CREATE SEQUENCE public.ddl_seen")
        conn.exec_driver_sql(
            "CREATE FUNCTION public.fail_third_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF nextval('public.ddl_seen') = 3 THEN RAISE EXCEPTION 'planted failure'; END IF; END $$"
        )
        conn.exec_driver_sql(
            "CREATE EVENT TRIGGER fail_third_ddl ON ddl_command_start EXECUTE FUNCTION public.fail_third_ddl()"
        )
    with pytest.raises(sa.exc.DBAPIError, match="planted failure"):
        migrate.upgrade("head")
    with engine.begin() as conn:
        seen = conn.exec_driver_sql("SELECT last_value FROM public.ddl_seen").scalar()
        conn.exec_driver_sql("DROP EVENT TRIGGER fail_third_ddl")
        left = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_namespace WHERE nspname IN ('stg', 'dim', 'fact', 'brg', 'ctl', 'mart')"
        ).scalar()
    assert seen == 3, "an error that is not a lost deadlock was retried"
    assert left == 0 and snapshot(engine)["version"] == []
