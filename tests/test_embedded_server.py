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


def _query(home: Path, sql: str) -> object:
    status = embedded.status(home)
    engine = sa.create_engine(status.url("ProjectManagement"), poolclass=sa.pool.NullPool)
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
        assert _query(home, "SELECT 1") == 1
        assert pmw(home, "db", "stop").returncode == 0
        time.sleep(0.5)
        assert bystander.poll() is None, "the unrelated process was killed"
    finally:
        bystander.kill()
