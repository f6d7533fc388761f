"""The local Prefect server: `pmw run` starts one on first need, on the loopback interface, with its state
under PMW_HOME; later commands reuse it; `pmw prefect` manages it; PREFECT_API_URL, when set, wins."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa
from conftest import pmw

from flows import demo_source, prefect_server

pytestmark = pytest.mark.slow
AS_OF = "2026-11-01T00:00:00Z"


def _flow_run_ids(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT flow_run_id FROM ctl.run ORDER BY run_id")).scalars())


def _listening_addresses(pid: int) -> set[str]:
    server = psutil.Process(pid)
    return {
        connection.laddr.ip
        for process in [server, *server.children(recursive=True)]
        for connection in process.net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN
    }


def _heartbeat_runs(api_url: str) -> set[str]:
    """The flow runs that sent Prefect a heartbeat, as its events API lists them."""
    body = {"filter": {"event": {"name": ["prefect.flow-run.heartbeat"]}}, "limit": 50}
    request = urllib.request.Request(
        f"{api_url}/events/filter", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        events = json.load(response)["events"]
    return {event["resource"]["prefect.resource.id"].removeprefix("prefect.flow-run.") for event in events}


def _log_messages(api_url: str, flow_run_id: str) -> list[str]:
    body = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200}
    request = urllib.request.Request(
        f"{api_url}/logs/filter", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return [log["message"] for log in json.load(response)]


def test_the_first_run_starts_a_local_server_that_later_commands_reuse(upgraded: sa.Engine, tmp_path: Path) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=datetime(2026, 11, 1))
    home = tmp_path / "pmw-home"  # the test's PMW_HOME
    env = {"PREFECT_HOME": str(tmp_path / "client"), "PREFECT_LOGGING_LEVEL": "INFO"}  # and no PREFECT_API_URL
    assert "PREFECT_API_URL" not in os.environ
    # a state file left by a server that is gone, its pid now another process's: not taken for a server
    prefect_server.state_dir(home).mkdir(parents=True)
    (prefect_server.state_dir(home) / "server.json").write_text(json.dumps({"pid": os.getpid(), "port": 9}))
    before = pmw("prefect", "status", cwd=tmp_path)
    assert before.returncode == 1 and "not running" in before.stderr

    first = pmw("run", "--as-of", AS_OF, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    server = prefect_server.status(home)
    assert server.running and server.pid != os.getpid()
    assert _listening_addresses(server.pid) == {"127.0.0.1"}  # loopback only
    assert (prefect_server.state_dir(home) / "prefect.db").is_file()  # its state under PMW_HOME

    demo_source.advance(upgraded, days=1)
    # heartbeats only where configured (`pmw run` saves Prefect's join of their thread, 0.4-0.8 s)
    second = pmw("run", cwd=tmp_path, env={**env, "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"})
    assert second.returncode == 0, second.stderr[-3000:]
    assert "starting the local Prefect server" not in second.stderr
    assert prefect_server.status(home).pid == server.pid  # the same server
    first_run, second_run = _flow_run_ids(upgraded)
    deadline = time.monotonic() + 60
    while second_run not in _heartbeat_runs(server.api_url) and time.monotonic() < deadline:
        time.sleep(1)  # the server stores events in batches
    beating = _heartbeat_runs(server.api_url)
    assert second_run in beating and first_run not in beating

    # both runs are that server's flow runs, completed, with their last log lines (sent as pmw exits), as the
    # UI shows them
    for flow_run_id in _flow_run_ids(upgraded):
        with urllib.request.urlopen(f"{server.api_url}/flow_runs/{flow_run_id}", timeout=10) as response:
            assert json.load(response)["state_type"] == "COMPLETED"
        assert any(" succeeded (as of " in message for message in _log_messages(server.api_url, flow_run_id))
    url = pmw("prefect", "url", cwd=tmp_path)
    assert (url.returncode, url.stdout.strip()) == (0, server.ui_url)
    status = pmw("prefect", "status", cwd=tmp_path)
    assert status.returncode == 0 and f"pid {server.pid}" in status.stdout and server.ui_url in status.stdout

    stopped = pmw("prefect", "stop", cwd=tmp_path)
    assert stopped.returncode == 0 and "local Prefect server stopped" in stopped.stdout
    assert not psutil.pid_exists(server.pid) or psutil.Process(server.pid).status() == psutil.STATUS_ZOMBIE
    assert pmw("prefect", "status", cwd=tmp_path).returncode == 1
    again = pmw("prefect", "stop", cwd=tmp_path)
    assert again.returncode == 0 and "was not running" in again.stdout
    restarted = pmw("prefect", "start", cwd=tmp_path)  # at once, its old port still in TIME_WAIT
    assert restarted.returncode == 0 and f"UI: {server.ui_url}" in restarted.stdout  # the same address


@pytest.mark.usefixtures("prefect_harness")
def test_prefect_api_url_when_set_wins(upgraded: sa.Engine, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=datetime(2026, 11, 1))
    env = {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "PREFECT_HOME": str(tmp_path / "client")}
    ran = pmw("run", "--as-of", AS_OF, cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert not prefect_server.state_dir(tmp_path / "pmw-home").exists()  # no local server was started
    (flow_run_id,) = _flow_run_ids(upgraded)
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run_id).state
    assert state is not None and state.is_completed()  # the run is the given server's
