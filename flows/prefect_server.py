"""The local Prefect server pmw runs its flows against: started in the background on first need, kept.

Without ``PREFECT_API_URL`` every Prefect process starts a temporary API server of its own (7-40 s on
these machines) and throws it away when it exits, runs and logs with it. pmw instead starts one
``prefect server start`` per data directory (``PMW_HOME``), on the loopback interface only, and leaves
it running like the embedded database: later commands attach in milliseconds and the UI shows every
run. ``PREFECT_API_URL``, when set (a Prefect server or Cloud of the user's, a test harness), wins.

The server's state lives in ``PMW_HOME/prefect-server``: its ``PREFECT_HOME``, its log, its SQLite
database and ``server.json`` (pid, port). Not the embedded PostgreSQL server: Prefect's migrations
create the ``pg_trgm`` extension, which the embedded wheel does not ship (it has plpgsql and vector
only). As with the embedded server, liveness is asked of the process and the API, never read
from clocks: the recorded pid must be a live ``prefect server start`` and ``/api/health`` must answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from flows.embedded import home_lock
from flows.errors import PrefectServerError

log = logging.getLogger(__name__)

STATE_DIR = "prefect-server"
PREFERRED_PORT = 4200  # Prefect's own default, so its documentation's addresses work when it is free
STARTUP_TIMEOUT_SECONDS = 180.0  # a cold start (UI build, database migrations) on a busy 2-core machine
STOP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class PrefectServerStatus:
    """What is known about the local Prefect server of one data directory."""

    state_dir: Path
    running: bool
    pid: int | None = None
    port: int | None = None
    detail: str = ""

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"


def state_dir(home: Path) -> Path:
    return home / STATE_DIR


def _state_file(home: Path) -> Path:
    return state_dir(home) / "server.json"


def _log_file(home: Path) -> Path:
    return state_dir(home) / "server.log"


def _recorded(home: Path) -> dict[str, object]:
    try:
        return dict(json.loads(_state_file(home).read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def _server_process(pid: object) -> psutil.Process | None:
    """The live ``prefect server start`` process with this pid, else None (a reused pid is someone else's)."""
    if not isinstance(pid, int):
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        command = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return process if {"prefect", "server", "start"} <= set(command) else None


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def status(home: Path) -> PrefectServerStatus:
    """The local Prefect server of ``home``: running when its process is alive and its API answers."""
    recorded = _recorded(home)
    port = recorded.get("port")
    process = _server_process(recorded.get("pid"))
    if process is None or not isinstance(port, int):
        return PrefectServerStatus(state_dir(home), running=False, detail="not running")
    if not _healthy(port):
        return PrefectServerStatus(
            state_dir(home), False, process.pid, port, detail="its process is alive, its API does not answer"
        )
    return PrefectServerStatus(state_dir(home), True, process.pid, port, detail="ready")


def _free_port(preferred: list[int]) -> int:
    for port in [*preferred, 0]:
        with socket.socket() as probe:
            # as the server binds (uvicorn sets SO_REUSEADDR): a port its last server left in TIME_WAIT is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise PrefectServerError("no free TCP port on 127.0.0.1 for the local Prefect server")


def ensure_running(home: Path) -> PrefectServerStatus:
    """Start the local Prefect server of ``home`` unless it runs, and return its status."""
    current = status(home)
    if current.running:
        return current
    with home_lock(home, "prefect-server.lock"):
        current = status(home)
        if current.running:
            return current
        if current.pid is not None:  # alive but not answering: started by another pmw, or hung
            return _wait_until_ready(home, current.pid, int(current.port or 0))
        return _start(home)


def _start(home: Path) -> PrefectServerStatus:
    directory = state_dir(home)
    (directory / "home").mkdir(parents=True, exist_ok=True)
    previous = _recorded(home).get("port")
    port = _free_port([p for p in (previous, PREFERRED_PORT) if isinstance(p, int)])
    # not the caller's Prefect settings (a profile's API URL), nor its PMW_* (connection URLs, secrets)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "PMW_"))}
    env |= {
        "PREFECT_HOME": str(directory / "home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{(directory / 'prefect.db').resolve()}",
    }
    with open(_log_file(home), "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this pmw process, and a Ctrl-C of it
        )  # fmt: skip
    _state_file(home).write_text(json.dumps({"pid": process.pid, "port": port}))
    log.info("starting the local Prefect server on port %d (its log: %s)", port, _log_file(home))
    return _wait_until_ready(home, process.pid, port)


def _wait_until_ready(home: Path, pid: int, port: int) -> PrefectServerStatus:
    started = time.monotonic()
    while time.monotonic() - started < STARTUP_TIMEOUT_SECONDS:
        if _server_process(pid) is None:
            raise PrefectServerError(
                f"the local Prefect server (pid {pid}) exited while starting; its last lines:\n"
                f"{_tail(_log_file(home))}\nSee {_log_file(home)}, or set PREFECT_API_URL to a server of your own."
            )
        if _healthy(port):
            log.info("local Prefect server ready in %.1f s", time.monotonic() - started)
            return status(home)
        time.sleep(0.25)
    raise PrefectServerError(
        f"the local Prefect server (pid {pid}, port {port}) did not answer within {STARTUP_TIMEOUT_SECONDS:.0f} s; "
        f"see {_log_file(home)}; `pmw prefect stop` stops it"
    )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def stop(home: Path) -> bool:
    """Stop the local Prefect server of ``home`` (and what it started). Returns False when none ran."""
    with home_lock(home, "prefect-server.lock"):
        recorded = _recorded(home)
        process = _server_process(recorded.get("pid"))
        if isinstance(recorded.get("port"), int):  # the next start takes the same port: the UI's address stays
            _state_file(home).write_text(json.dumps({"port": recorded["port"]}))
        if process is None:
            return False
        group = os.getpgid(process.pid)
        os.killpg(group, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except psutil.TimeoutExpired:
            log.warning("the local Prefect server did not stop within %.0f s: killed", STOP_TIMEOUT_SECONDS)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # whatever of its group is left
        return True
