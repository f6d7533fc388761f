"""The randomized comparison of the warehouse with the model, over many seeds (CI runs a few:
tests/test_model.py).

Usage: python tests/model_check.py [--seeds 200] [--first-seed 1] [--days 30] [--no-shrink]

For each seed: a fresh copy of a database upgraded to head (on the embedded server, in a temporary data
directory, or the server at PMW_TEST_DATABASE_URL), a random scenario of --days days replayed on it, the
warehouse compared with the model after every run. Prints one line per seed; on a difference, the seed,
day, object, key and both values, then shrinks the scenario and prints it as a regression test. Exits 1
when any seed failed.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
# a Prefect home of its own: the ephemeral API's SQLite database would otherwise be the user's ~/.prefect one,
# shared by every concurrent model_check and grown by every run (1.3 GB here after a few sessions), and each
# of the thousands of task runs writes to it
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="pmw-model-prefect-"))
# that API's recorders of task runs and events, and its automations, serve only its UI, which nobody opens:
# without them it uses no CPU of the two cores the replays share (86 % of one before)
os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_SERVICES_ACTIONS_ENABLED", "false")

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "benchmarks"))
from conftest import (
    clone_database,
    create_database,
    dispose_flow_engines,
    drop_database,
    without_commit_flushes,
)
from model.replay import FAULT_STEPS, Failure, replay
from model.scenario import Scenario, generate
from model.shrink import regression_test, shrink
from sqlalchemy.engine import URL

from flows.runs import without_flow_heartbeats


def attempt_on(admin: URL, template: URL):
    """A function replaying a scenario on a fresh copy of ``template`` (dropped after)."""

    def attempt(scenario: Scenario, report=lambda line: None) -> Failure | None:
        url = clone_database(admin, template, prefix="pmw_model")
        os.environ["PMW_WAREHOUSE_URL"] = url.render_as_string(hide_password=False)
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            return replay(engine, scenario, report)
        finally:
            engine.dispose()
            dispose_flow_engines()
            drop_database(admin, url)

    return attempt


def check(seeds: range, args: argparse.Namespace, attempt: Callable[..., Failure | None]) -> list[int]:
    """Replay each seed's scenario, one line per seed; a failing one is printed, then shrunk and printed as a
    regression test (unless --no-shrink). The seeds that failed."""
    failed = []
    for seed in seeds:
        scenario = generate(seed, args.days, FAULT_STEPS)
        started = time.perf_counter()
        failure = attempt(scenario, print if args.verbose else lambda line: None)
        runs = sum(len(day.runs) for day in scenario.days)
        print(f"seed {seed:>4}: {args.days} days, {runs} runs, {time.perf_counter() - started:5.1f} s: "
              f"{'ok' if failure is None else 'DIFFERS'}", flush=True)  # fmt: skip
        if failure is None:
            continue
        failed.append(seed)
        print(f"seed {seed}, {failure}", flush=True)
        if not args.no_shrink:
            small, small_failure = shrink(scenario, failure, attempt)
            print(f"shrunk seed {seed} to {len(small.days)} days: {small_failure}\n")
            print(regression_test(small, small_failure), flush=True)
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--no-shrink", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="one line per run")
    args = parser.parse_args()
    from bench_seed import admin_url

    from flows import embedded, migrate

    external = os.environ.get("PMW_TEST_DATABASE_URL")
    home = Path(tempfile.mkdtemp(prefix="pmw-model-"))
    admin = sa.engine.make_url(external) if external else without_commit_flushes(admin_url(home))
    template = create_database(admin, prefix="pmw_model_template")
    os.environ["PMW_WAREHOUSE_URL"] = template.render_as_string(hide_password=False)
    migrate.upgrade("head", output=io.StringIO())
    dispose_flow_engines()
    attempt = attempt_on(admin, template)
    clock = time.perf_counter()
    try:
        with without_flow_heartbeats():
            failed = check(range(args.first_seed, args.first_seed + args.seeds), args, attempt)
        total = time.perf_counter() - clock
        print(f"{args.seeds} seeds x {args.days} days in {total / 60:.1f} min: "
              f"{args.seeds - len(failed)} equal the model, {len(failed)} differ {failed or ''}")  # fmt: skip
        return 1 if failed else 0
    finally:
        dispose_flow_engines()
        drop_database(admin, template)
        if not external:
            embedded.stop(home)
        if Path(os.environ["PREFECT_HOME"]).name.startswith("pmw-model-prefect-"):  # the one made above
            shutil.rmtree(os.environ["PREFECT_HOME"], ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
