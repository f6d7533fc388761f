"""The embedded server through `pmw db`: sharing, crashes, stale PID files. Each test has its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from flows import embedded

pytestmark = pytest.mark.slow


def pmw(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PMW_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.fixture
def home(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "home"
    yield path
    embedded.stop(path)


def _query(home: Path, sql: str, database: str = "ProjectManagement") -> object:
    status = embedded.status(home)
    engine = sa.create_engine(status.url(database), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        value = conn.exec_driver_sql(sql).scalar()
    engine.dispose()
    return value


def test_start_status_url_stop(home: Path) -> None:
    assert pmw(home, "db", "status").returncode == 1
    started = pmw(home, "db", "start")
    assert started.returncode == 0, started.stderr
    status = pmw(home, "db", "status")
    assert status.returncode == 0 and "running: pid" in status.stdout
    url = pmw(home, "db", "url").stdout.strip()
    psql = embedded.client_binary("psql")
    answer = subprocess.run([str(psql), url, "-tAc", "SELECT current_database()"], capture_output=True, text=True)
    assert answer.stdout.strip() == "ProjectManagement", answer.stderr
    assert pmw(home, "db", "stop").stdout.strip() == "embedded PostgreSQL stopped"
    assert pmw(home, "db", "status").returncode == 1
    assert pmw(home, "db", "url").returncode == 1


def test_the_server_runs_with_the_warehouse_tuning_from_its_first_start(home: Path) -> None:
    assert pmw(home, "db", "start").returncode == 0
    expected = embedded.tuning(psutil.virtual_memory().total)
    for name in ("shared_buffers", "effective_cache_size"):
        same = _query(home, f"SELECT pg_size_bytes(current_setting('{name}')) = pg_size_bytes('{expected[name]}')")
        assert same is True, (name, _query(home, f"SHOW {name}"), expected[name])
    for name in ("jit", "random_page_cost"):
        assert _query(home, f"SHOW {name}") == expected[name], name
    for name in expected:
        source = _query(home, f"SELECT sourcefile FROM pg_settings WHERE name = '{name}'")
        assert str(source).endswith(embedded.TUNING_FILE), (name, source)
    # a hand edit of the tuning file is replaced at the next start, and the include is not repeated
    tuning_file = embedded.data_dir(home) / embedded.TUNING_FILE
    tuning_file.write_text("jit = 'on'\n")
    assert pmw(home, "db", "stop").returncode == 0
    assert pmw(home, "db", "start").returncode == 0
    assert _query(home, "SHOW jit") == "off"
    conf = (embedded.data_dir(home) / "postgresql.conf").read_text()
    assert conf.count(f"include_if_exists = '{embedded.TUNING_FILE}'") == 1


@pytest.mark.parametrize(
    ("memory_gib", "shared_buffers"), [(0.25, "128MB"), (2, "512MB"), (4, "1024MB"), (24, "2048MB")]
)
def test_shared_buffers_are_a_quarter_of_memory_within_bounds(memory_gib: float, shared_buffers: str) -> None:
    assert embedded.tuning(int(memory_gib * 1024**3))["shared_buffers"] == shared_buffers


def test_two_processes_at_once_share_one_server(home: Path) -> None:
    env = {**os.environ, "PMW_HOME": str(home)}
    procs = [
        subprocess.Popen([sys.executable, "-m", "flows.cli", "db", "start"], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    pids = {line.split("pid ")[1].split(",")[0] for line in outputs for line in line.splitlines() if "pid" in line}
    assert len(pids) == 1, outputs
    postmasters = [
        p for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and str(embedded.data_dir(home).resolve()) in " ".join(p.info["cmdline"] or [])
    ]  # fmt: skip
    assert len(postmasters) == 1


def test_a_process_killed_with_sigkill_leaves_a_correct_status_and_a_reusable_server(home: Path) -> None:
    env = {**os.environ, "PMW_HOME": str(home)}
    # A pmw process that is in the middle of work (holding a connection) when it is killed.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from flows.cli import main; from flows import embedded, database;"
         "from flows.settings import Settings; s = Settings();"
         "import sqlalchemy as sa; e = database.create_engine(database.warehouse_url(s)); c = e.connect();"
         "c.exec_driver_sql('CREATE TABLE survivor (x int)'); c.commit(); print('ready', flush=True); time.sleep(600)"],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    # the wheel now lists the holder as a handle
    handles = embedded.data_dir(home) / ".handle_pids.json"
    assert holder.pid in json.loads(handles.read_text())
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)

    status = pmw(home, "db", "status")
    assert status.returncode == 0 and "running" in status.stdout
    assert _query(home, "SELECT count(*) FROM survivor") == 0  # reusable, data intact
    seeded = pmw(home, "source", "seed")
    assert seeded.returncode == 0, seeded.stderr
    assert pmw(home, "db", "stop").stdout.strip() == "embedded PostgreSQL stopped"
    assert pmw(home, "db", "status").returncode == 1
    assert holder.pid not in json.loads(handles.read_text())  # the dead handle was pruned
    restarted = pmw(home, "db", "start")
    assert restarted.returncode == 0
    assert _query(home, "SELECT count(*) FROM dbo.acc_issues") == 6500


def test_a_stale_pid_file_naming_an_unrelated_process_is_neither_used_nor_killed(home: Path) -> None:
    assert pmw(home, "db", "start").returncode == 0
    pid_file = embedded.data_dir(home) / "postmaster.pid"
    lines = pid_file.read_text().splitlines()
    assert pmw(home, "db", "stop").returncode == 0
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        # As after a crash and a reboot: the recorded PID now belongs to someone else.
        pid_file.write_text("\n".join([str(bystander.pid), *lines[1:]]) + "\n")
        status = pmw(home, "db", "status")
        assert status.returncode == 1 and "stale" in status.stdout
        started = pmw(home, "db", "start")
        assert started.returncode == 0, started.stderr
        assert "removing stale" in started.stderr
        assert _query(home, "SELECT 1") == 1
        assert pmw(home, "db", "stop").returncode == 0
        time.sleep(0.5)
        assert bystander.poll() is None, "the unrelated process was killed"
    finally:
        bystander.kill()


def test_a_stale_pid_file_naming_a_postgres_of_another_data_dir_is_removed(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    try:
        neighbour = embedded.ensure_running(other)
        assert pmw(home, "db", "start").returncode == 0
        pid_file = embedded.data_dir(home) / "postmaster.pid"
        lines = pid_file.read_text().splitlines()
        assert pmw(home, "db", "stop").returncode == 0
        # A copied data directory, or a reused PID: the recorded PID is the other cluster's postmaster.
        pid_file.write_text("\n".join([str(neighbour.pid), *lines[1:]]) + "\n")
        status = embedded.status(home)
        assert not status.running and "stale" in status.detail
        started = pmw(home, "db", "start")
        assert started.returncode == 0, started.stderr
        assert "removing stale" in started.stderr
        assert embedded.status(home).pid not in (None, neighbour.pid)
        assert _query(home, "SELECT 1") == 1
        assert pmw(home, "db", "stop").returncode == 0
        # the other cluster was neither attached to nor stopped
        assert embedded.status(other).pid == neighbour.pid
        assert _query(other, "SELECT 1", database="postgres") == 1
    finally:
        embedded.stop(other)


def test_a_pid_file_without_a_pid_is_removed_and_the_server_starts(home: Path) -> None:
    embedded.ensure_running(home)
    assert embedded.stop(home)
    pid_file = embedded.data_dir(home) / "postmaster.pid"
    pid_file.write_text("")  # a crash between PostgreSQL creating the file and writing it
    assert embedded.status(home).detail == "stopped (stale postmaster.pid)"
    assert embedded.ensure_running(home).running
    assert _query(home, "SELECT 1", database="postgres") == 1


def test_a_clock_step_leaves_the_running_server_and_its_lock_file_alone(home: Path) -> None:
    assert pmw(home, "db", "start").returncode == 0
    pgdata = embedded.data_dir(home)
    pid_file = pgdata / "postmaster.pid"
    lines = pid_file.read_text().splitlines()
    pid = int(lines[0])
    postmaster = psutil.Process(pid)
    # After the clock steps forward (a paused VM), psutil's start time moves with it and the recorded
    # one does not. Only line 3 changes, in place (same owner and mode): PostgreSQL's own periodic
    # re-check reads line 1 only, so the server keeps running on this file.
    lines[2] = str(int(postmaster.create_time()) - 60)
    pid_file.write_text("\n".join(lines) + "\n")
    edited = pid_file.read_text()

    status = embedded.status(home)
    assert status.running and status.pid == pid
    assert embedded.ensure_running(home).pid == pid
    shown = pmw(home, "db", "status")
    assert shown.returncode == 0 and f"running: pid {pid}," in shown.stdout, shown.stdout
    started = pmw(home, "db", "start")  # attaches and runs a query (CREATE DATABASE if missing)
    assert started.returncode == 0, started.stderr
    assert f"pid {pid}," in started.stdout
    for result in (shown, started):
        assert "removing stale" not in result.stderr
    assert _query(home, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'checkpointer'") == 1
    assert pid_file.read_text() == edited, "the live server's lock file was removed or rewritten"
    assert postmaster.is_running() and postmaster.status() != psutil.STATUS_ZOMBIE
    assert "lock file is invalid" not in (pgdata / "log").read_text()

    assert pmw(home, "db", "stop").stdout.strip() == "embedded PostgreSQL stopped"
    postmaster.wait(timeout=30)  # the postmaster exits right after removing its lock file
    assert not postmaster.is_running()
    assert not pid_file.exists()
    assert pmw(home, "db", "status").returncode == 1


def test_stop_then_start_in_one_process_repeatedly(home: Path) -> None:
    pids = []
    for round_ in range(3):
        started = embedded.ensure_running(home)
        assert started.running, started.detail
        pids.append(started.pid)
        if round_ == 0:
            engine = sa.create_engine(started.url("postgres"), poolclass=sa.pool.NullPool)
            with engine.begin() as conn:
                conn.exec_driver_sql("CREATE TABLE kept (x int)")
            engine.dispose()
        assert _query(home, "SELECT count(*) FROM kept", database="postgres") == 0
        assert embedded.stop(home) is True
        assert not embedded.status(home).running
        assert embedded.stop(home) is False
    assert len(set(pids)) == 3, pids
    again = embedded.ensure_running(home)
    assert again.running and again.pid not in pids
