"""The `pmw` commands a user runs first, end to end through the console script."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import pmw
from sqlalchemy.engine import URL

from flows import embedded, migrate, prefect_server


@pytest.mark.slow
def test_demo_on_a_fresh_machine_starts_seeds_and_upgrades(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / ".pmw"  # the default PMW_HOME is ./.pmw
    monkeypatch.delenv("PMW_HOME")
    try:
        result = pmw("demo", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        for line in ("start the embedded PostgreSQL server", "seed the demo source", "upgrade the warehouse to head",
                     "run the warehouse flow", "advance the source one day", "run the warehouse flow again",
                     "dbo.vw_ProjectManagement_AllIssues", "current rows", "a BI tool (the marts): postgresql://pmw_reader@",
                     "Projects with the most open issues", "Reviews delivered on time", "Largest fee variances",
                     "Projects needing attention this month",
                     "quality checks of run", "the Prefect UI:        http://127.0.0.1:"):  # fmt: skip
            assert line in result.stdout
        assert "Traceback" not in result.stderr and "CancelledError" not in result.stderr  # a clean exit, quiet
        # the address printed is the local Prefect server's UI, left running for the user to open
        ui = next(line for line in result.stdout.splitlines() if "the Prefect UI:" in line).split()[3]
        assert ui == prefect_server.status(home).ui_url
        with urllib.request.urlopen(ui, timeout=30) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        status = embedded.status(home)
        assert status.running
        # the URL offered to BI tools reads the marts and nothing else
        bi_url = next(line for line in result.stdout.splitlines() if "a BI tool" in line).split(": ", 1)[1]
        bi = sa.create_engine(
            sa.engine.make_url(bi_url).set(drivername="postgresql+psycopg"), poolclass=sa.pool.NullPool
        )
        with bi.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM mart.project_overview").scalar()
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                conn.exec_driver_sql("SELECT count(*) FROM dim.issue")
        bi.dispose()
        engine = sa.create_engine(status.url("ProjectManagement"), poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.heads()[0]
            issues = conn.exec_driver_sql('SELECT count(*) FROM dbo."vw_ProjectManagement_AllIssues"').scalar()
            assert issues > 10_000  # seeded 10,000, then one simulated day added more
            assert conn.exec_driver_sql("SELECT status FROM ctl.run ORDER BY run_id").scalars().all() == [
                "success",
                "success",
            ]
            # the live issues, both ways: Revizto removes deleted issues from the view, whose current rows here
            # are then deleted versions
            live = conn.exec_driver_sql(
                'SELECT count(*) FROM dbo."vw_ProjectManagement_AllIssues" WHERE NOT is_deleted'
            )
            loaded = conn.exec_driver_sql(
                "SELECT count(*) FROM dim.issue WHERE is_current AND NOT is_deleted AND issue_sk <> -1"
            )
            assert loaded.scalar() == live.scalar()
        engine.dispose()
        again = pmw("demo", cwd=tmp_path)  # a second demo keeps the source and is a no-op upgrade
        assert again.returncode == 0 and "kept as it is" in again.stdout
        assert "starting the local Prefect server" not in again.stderr  # the first demo's server, reused
    finally:
        prefect_server.stop(home)
        embedded.stop(home)


def test_upgrade_sql_for_sql_server_prints_a_batch_separated_script(tmp_path: Path) -> None:
    result = pmw("upgrade", "--sql", "--dialect", "mssql", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(":on error exit") and "\nGO\n" in result.stdout
    assert "CREATE OR ALTER PROCEDURE warehouse.load_dim_date" in result.stdout
    assert not (tmp_path / ".pmw").exists()  # printing a script starts no server


def test_dialect_without_sql_is_refused_with_a_reason(tmp_path: Path) -> None:
    result = pmw("upgrade", "--dialect", "mssql", cwd=tmp_path)
    assert result.returncode == 2
    assert "--dialect only applies with --sql" in result.stderr


def test_upgrade_and_downgrade_commands(engine: sa.Engine, tmp_path: Path) -> None:
    assert pmw("upgrade", cwd=tmp_path).returncode == 0
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.heads()[0]
    assert pmw("downgrade", "base", cwd=tmp_path).returncode == 0
    with engine.connect() as conn:
        assert migrate.current_revision(conn) is None


@pytest.mark.slow
def test_run_and_status_commands(upgraded: sa.Engine, tmp_path: Path) -> None:
    from flows import demo_source

    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=datetime(2026, 11, 1))
    env = {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_LOGGING_LEVEL": "INFO"}  # as a user sees it
    ran = pmw("run", "--as-of", "2026-11-01T00:00:00Z", cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "warehouse.load_dim_issue" in ran.stdout and "status: success" in ran.stdout
    status = pmw("status", cwd=tmp_path, env=env)
    assert status.returncode == 0
    assert "success" in status.stdout and "issues               Revizto" in status.stdout
    assert "cursor pulls of run 1" in status.stdout and "read, not compared" in status.stdout  # a first, full pull
    # a line Prefect logs for a task names the task; no Alembic line follows the step table
    finished = [line for line in ran.stderr.splitlines() if "Finished in state" in line]
    unnamed = [line for line in finished if not re.search(r"prefect\.(task|flow)_runs: (task|flow) run '", line)]
    assert finished and not unnamed, unnamed[:3]
    assert "prefect.task_runs: task run 'pull issues': Finished in state Completed()" in ran.stderr
    assert "alembic" not in ran.stdout + ran.stderr
    bad = pmw("run", "--source", "no_such_source", cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "no_such_source" in bad.stderr and "issue_categories" in bad.stderr
    assert "prefect" not in bad.stderr.lower() and "Traceback" not in bad.stderr  # refused before Prefect starts


def test_a_reader_that_closes_the_pipe_ends_pmw_quietly(upgraded: sa.Engine, tmp_path: Path) -> None:
    """`pmw status | head`: the reader goes away before pmw has written; no traceback, SIGPIPE's exit code."""
    executable = shutil.which("pmw", path=str(Path(sys.executable).parent)) or "pmw"
    process = subprocess.Popen([executable, "status"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # every write pmw makes now meets a closed pipe
    errors = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141, errors
    assert errors == ""


def test_status_on_a_warehouse_behind_the_code_says_to_upgrade(engine: sa.Engine, tmp_path: Path) -> None:
    assert pmw("upgrade", "0011", cwd=tmp_path).returncode == 0
    result = pmw("status", cwd=tmp_path)
    assert result.returncode == 2
    assert f"pmw: the warehouse is at revision 0011, this code expects {migrate.heads()[0]}: run `pmw upgrade`" in (
        result.stderr
    )
    assert "does not exist" not in result.stderr
    run = pmw("run", cwd=tmp_path)  # refused before Prefect starts, in the same words
    assert run.returncode == 2 and "run `pmw upgrade`" in run.stderr
    assert "prefect" not in run.stderr.lower() and "Traceback" not in run.stderr


def test_dq_on_an_empty_database_says_it_is_not_initialised(engine: sa.Engine, tmp_path: Path) -> None:
    result = pmw("dq", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "the warehouse is not initialised (it has no revision), "
        f"this code expects {migrate.heads()[0]}: run `pmw upgrade`" in result.stderr
    )


@pytest.mark.parametrize(
    ("option", "server_says", "hint"),
    [
        ("statement_timeout", "canceling statement due to statement timeout", "longer than statement_timeout allows"),
        ("lock_timeout", "canceling statement due to lock timeout", "longer than lock_timeout allows for a lock"),
    ],
)
def test_a_timeout_is_reported_as_a_cancelled_statement_not_a_connection_failure(
    upgraded: sa.Engine, tmp_path: Path, option: str, server_says: str, hint: str
) -> None:
    with upgraded.connect() as holder:  # another session holds the table `pmw status` reads first
        holder.exec_driver_sql("LOCK TABLE ctl.run IN ACCESS EXCLUSIVE MODE")
        result = pmw("status", cwd=tmp_path, env={"PGOPTIONS": f"-c {option}=300"})
    assert result.returncode == 2
    assert server_says in result.stderr and hint in result.stderr
    assert "find the blocking session (SELECT pid, pg_blocking_pids(pid)" in result.stderr
    assert "Check that the server is running" not in result.stderr


def test_database_errors_are_printed_without_secrets(database_url: URL, tmp_path: Path) -> None:
    secret = "Zq9-not-to-be-shown"  # the server echoes the database name: here it is also the password
    url = database_url.set(password=secret, database=secret).render_as_string(hide_password=False)
    result = pmw("status", cwd=tmp_path, env={"PMW_WAREHOUSE_URL": url})
    assert result.returncode == 2
    assert 'database "***" does not exist' in result.stderr and secret not in result.stderr
    assert "Check that the server is running" in result.stderr  # a real connection failure keeps its hint


@pytest.mark.slow
def test_db_url_for_a_role_connects_as_that_role(tmp_path: Path) -> None:
    env = {"PMW_HOME": str(tmp_path / "home")}
    psql = str(embedded.client_binary("psql"))
    try:
        assert pmw("db", "start", cwd=tmp_path, env=env).returncode == 0
        admin = pmw("db", "url", cwd=tmp_path, env=env).stdout.strip()
        assert admin.startswith("postgresql://postgres@")  # without --role: as before, the superuser
        create = "DO $$BEGIN CREATE ROLE pmw_reader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$"
        subprocess.run([psql, admin, "-c", create], check=True, capture_output=True)
        reader = pmw("db", "url", "--role", "reader", cwd=tmp_path, env=env).stdout.strip()
        assert reader.startswith("postgresql://pmw_reader@")
        answer = subprocess.run([psql, reader, "-tAc", "SELECT current_user"], capture_output=True, text=True)
        assert answer.stdout.strip() == "pmw_reader", answer.stderr
        for_sqlalchemy = pmw("db", "url", "--role", "reader", "--sqlalchemy", cwd=tmp_path, env=env).stdout.strip()
        engine = sa.create_engine(for_sqlalchemy, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_user").scalar() == "pmw_reader"
        engine.dispose()
    finally:
        embedded.stop(tmp_path / "home")
