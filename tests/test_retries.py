"""Retries: transient database errors (as the server raises them) are retried, others are not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from flows import demo_source
from flows.database import is_transient, lost_lock_conflict
from flows.warehouse_flow import warehouse

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


def _error_from(engine: sa.Engine, sql: str) -> BaseException:
    with pytest.raises(sa.exc.DBAPIError) as raised, engine.begin() as conn:
        conn.exec_driver_sql(sql)
    return raised.value


def test_transient_errors_are_told_apart_from_the_rest(engine: sa.Engine) -> None:
    serialization = "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$"
    deadlock = "DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = 'deadlock_detected'; END $$"
    for lost in (_error_from(engine, serialization), _error_from(engine, deadlock)):
        assert is_transient(lost) and lost_lock_conflict(lost)
    assert not is_transient(_error_from(engine, "SELECT * FROM no_such_table"))
    assert not is_transient(_error_from(engine, "SELECT 1 / 0"))
    # a connection the server drops mid-statement
    with engine.connect() as victim, engine.connect() as killer:
        pid = victim.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        killer.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        with pytest.raises(sa.exc.DBAPIError) as dropped:
            victim.exec_driver_sql("SELECT 1")
    assert is_transient(dropped.value) and not lost_lock_conflict(dropped.value)


def test_sql_servers_errors_as_pyodbc_reports_them_are_told_apart() -> None:
    # pyodbc is not importable here (no ODBC driver manager): its errors carry the SQLSTATE first in args,
    # then the driver's text, which for SQL Server ends with the native error number in parentheses
    class OdbcError(Exception):
        pass

    victim = OdbcError("40001", "[40001] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Transaction "
                       "(Process ID 57) was deadlocked on lock resources with another process and has been chosen "
                       "as the deadlock victim. Rerun the transaction. (1205) (SQLExecDirectW)")  # fmt: skip
    link = OdbcError("08S01", "[08S01] [Microsoft][ODBC Driver 18 for SQL Server]Communication link failure (0)")
    missing = OdbcError("42S02", "[42S02] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Invalid object "
                        "name 'dim.projekt'. (208) (SQLExecDirectW)")  # fmt: skip
    assert lost_lock_conflict(victim) and is_transient(victim)
    assert is_transient(link) and not lost_lock_conflict(link)
    assert not is_transient(missing) and not lost_lock_conflict(missing)
    assert not is_transient(ValueError("1205 rows read"))  # a number in a message is not an error code


@pytest.mark.usefixtures("prefect_harness")
def test_a_transient_failure_in_a_task_is_retried_and_the_run_succeeds(upgraded: sa.Engine) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    with upgraded.begin() as conn:
        # The first insert into stg.clients fails as a serialization failure would; later ones pass.
        # A sequence counts the attempts: nextval survives the failed transaction's rollback.
        conn.exec_driver_sql("""
            CREATE SEQUENCE public.attempts;
            CREATE FUNCTION public.fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF nextval('public.attempts') = 1 THEN
                    RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = 'serialization_failure';
                END IF;
                RETURN NULL;
            END $$;
            CREATE TRIGGER fail_once AFTER INSERT ON stg.clients
                FOR EACH STATEMENT EXECUTE FUNCTION public.fail_once();
        """)
    result = warehouse(as_of=AS_OF)
    assert result["status"] == "success"
    with upgraded.connect() as conn:
        assert conn.exec_driver_sql("SELECT last_value FROM public.attempts").scalar() == 2  # failed, then passed
        step = conn.exec_driver_sql("SELECT status, rows_read FROM ctl.run_step WHERE step_name = 'pull clients'").one()
        assert tuple(step) == ("success", 8)
        assert (
            conn.exec_driver_sql("SELECT count(*) FROM dim.client WHERE is_current AND client_sk <> -1").scalar() == 8
        )


@pytest.mark.usefixtures("prefect_harness")
def test_a_permanent_failure_is_not_retried(upgraded: sa.Engine) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    with upgraded.begin() as conn:
        conn.exec_driver_sql("""
            CREATE SEQUENCE public.attempts;
            CREATE FUNCTION public.always_fail() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM nextval('public.attempts');
                RAISE EXCEPTION 'injected permanent failure' USING ERRCODE = 'check_violation';
            END $$;
            CREATE TRIGGER always_fail AFTER INSERT ON stg.clients
                FOR EACH STATEMENT EXECUTE FUNCTION public.always_fail();
        """)
    with pytest.raises(Exception, match="injected permanent failure"):
        warehouse(as_of=AS_OF)
    with upgraded.connect() as conn:
        run = conn.exec_driver_sql("SELECT status, error_text FROM ctl.run").one()
        attempts = conn.exec_driver_sql("SELECT last_value FROM public.attempts").scalar()
    assert run.status == "failed" and "injected permanent failure" in run.error_text
    assert attempts == 1  # not retried
