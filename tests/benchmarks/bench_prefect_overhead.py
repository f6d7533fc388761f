"""What Prefect costs a `pmw run`: wall time minus database work, with the local Prefect server up, and
the same run in a process that starts Prefect's temporary server (the behaviour before issue #16).

Usage: python tests/benchmarks/bench_prefect_overhead.py [RUNS]     (default 5)

In a fresh PMW_HOME: `pmw demo` (the embedded database, the demo source, two runs, the local Prefect
server left running), then RUNS times: advance the demo source one day and time `pmw run` from the
shell's point of view (process start to exit). Database work is the run's step times in ctl.run_step,
as every benchmark here counts it. Then RUNS more days, each run by a process with no PREFECT_API_URL
that calls the flow itself, so Prefect starts its temporary server, as `pmw run` did before. Also
printed: the cost of importing the flow's modules (Python and Prefect start-up, part of the overhead
and paid by either way), and a cold start of the local server. Target (issue #16): overhead <= 2 s
with the server up. Figures depend on the machine's load: say what else ran when quoting them.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from flows import database, embedded
from flows.settings import load as load_settings

TARGET_OVERHEAD_SECONDS = 2.0
FLOW_WITH_TEMPORARY_SERVER = "from flows.warehouse_flow import warehouse; warehouse()"


def _timed(command: Sequence[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


LAST_RUN_DATABASE_MS = sa.text(
    "SELECT coalesce(sum(duration_ms), 0) FROM ctl.run_step WHERE run_id = (SELECT max(run_id) FROM ctl.run)"
)


def _last_run_database_seconds(engine: sa.Engine) -> float:
    with engine.connect() as conn:
        return float(conn.execute(LAST_RUN_DATABASE_MS).scalar_one()) / 1000


def _measure(label: str, command: Sequence[str], env: dict[str, str], engine: sa.Engine, runs: int) -> list[str]:
    pmw = [sys.executable, "-m", "flows.cli"]
    walls, works = [], []
    for _ in range(runs):
        _timed([*pmw, "source", "advance", "--days", "1"], env)
        walls.append(_timed(command, env))
        works.append(_last_run_database_seconds(engine))
    overheads = [wall - work for wall, work in zip(walls, works, strict=True)]
    return [
        f"{label:<52} {statistics.median(walls):>8.2f} {statistics.median(works):>9.2f} "
        f"{statistics.median(overheads):>9.2f} {min(overheads):>6.2f} {max(overheads):>6.2f}"
    ]


def main(runs: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="pmw-bench-prefect-"))
    base = {key: value for key, value in os.environ.items() if not key.startswith(("PMW_", "PREFECT_"))}
    env = {**base, "PMW_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env["PREFECT_LOGGING_LEVEL"] = "WARNING"
    pmw = [sys.executable, "-m", "flows.cli"]
    try:
        _timed([*pmw, "demo"], env)
        os.environ["PMW_HOME"] = str(home)
        engine = database.create_engine(database.warehouse_url(load_settings()))
        imports = min(_timed([sys.executable, "-c", "import flows.warehouse_flow"], env) for _ in range(3))
        rows = _measure("pmw run, local Prefect server up", [*pmw, "run"], env, engine, runs)
        rows += _measure(
            "flow in a process with Prefect's temporary server",
            [sys.executable, "-c", FLOW_WITH_TEMPORARY_SERVER], {**env, "PREFECT_HOME": str(home / "temporary")},
            engine, runs,
        )  # fmt: skip
        _timed([*pmw, "prefect", "stop"], env)
        cold = _timed([*pmw, "prefect", "start"], env)
        engine.dispose()
        print(f"{runs} runs each (medians; overhead = wall time - database work in ctl.run_step), seconds:")
        print(f"{'':<52} {'wall':>8} {'database':>9} {'overhead':>9} {'min':>6} {'max':>6}")
        print("\n".join(rows))
        print(f"target: overhead <= {TARGET_OVERHEAD_SECONDS:.1f} s with the local server up")
        print(f"of which importing the flow's modules (Python, Prefect, SQLAlchemy; best of 3): {imports:.2f} s")
        print(f"cold start of the local Prefect server (`pmw prefect start` after a stop): {cold:.2f} s")
    finally:
        subprocess.run([*pmw, "prefect", "stop"], env=env, capture_output=True, timeout=120)
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
