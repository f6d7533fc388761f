"""Soak: simulated days of source changes, a warehouse run after each, the whole-warehouse invariants
checked after every run (tests/warehouse_invariants.py). CI runs a short sequence (tests/test_soak.py).

Usage: python tests/soak.py [--days 60] [--scale 1]

On a fresh database of the embedded server (in a temporary data directory), or of the server at
PMW_TEST_DATABASE_URL: upgrade, seed the demo source, run; then each day `advance` the source one day
and run at the next day's as-of. Prints one line per day; stops at the first violation (exit 1).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from warehouse_invariants import violations

from flows import demo_source

START = datetime(2026, 11, 1, tzinfo=UTC)


def soak(engine: sa.Engine, days: int, report: Callable[[str], None] = print) -> None:
    """Advance and run ``days`` times from START (already loaded); raise at the first broken invariant."""
    from flows.warehouse_flow import warehouse

    report(f"{'day':>4} {'as of':<20} {'seconds':>8} {'versions':>9} {'snapshot rows':>14}  invariants")
    for day in range(1, days + 1):
        as_of = START + timedelta(days=day)
        demo_source.advance(engine, days=1)
        clock = time.perf_counter()
        result = warehouse(as_of=as_of)
        seconds = time.perf_counter() - clock
        with engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT count(*) FROM dim.issue WHERE run_id = :r"),
                                    {"r": result["run_id"]}).scalar_one()  # fmt: skip
            snapshot = conn.execute(sa.text("SELECT count(*) FROM fact.issue_daily WHERE run_id = :r"),
                                    {"r": result["run_id"]}).scalar_one()  # fmt: skip
        broken = violations(engine, as_of)
        report(f"{day:>4} {as_of:%Y-%m-%d %H:%M}Z {seconds:>8.1f} {versions:>9,} {snapshot:>14,}  "
               f"{broken or 'ok'}")  # fmt: skip
        if result["status"] != "success" or broken:
            raise AssertionError(f"day {day}: run {result['status']}, invariants broken: {broken}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--scale", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent / "benchmarks"))
    from bench_seed import admin_url, drop, fresh_database

    from flows import embedded, migrate
    from flows.warehouse_flow import warehouse

    home = Path(tempfile.mkdtemp(prefix="pmw-soak-"))
    admin = admin_url(home)
    url = fresh_database(admin)
    os.environ["PMW_WAREHOUSE_URL"] = url.render_as_string(hide_password=False)
    engine = sa.create_engine(url)
    try:
        migrate.upgrade("head", output=io.StringIO())
        demo_source.seed(engine, scale=args.scale, seed_value=42, anchor=START.replace(tzinfo=None))
        assert warehouse(as_of=START)["status"] == "success"
        assert violations(engine, START) == {}, violations(engine, START)
        soak(engine, args.days)
        print(f"soak passed: {args.days} days at scale {args.scale}, every invariant held after every run")
        return 0
    except AssertionError as exc:
        print(f"soak FAILED: {exc}")
        return 1
    finally:
        engine.dispose()
        drop(admin, url)
        if not os.environ.get("PMW_TEST_DATABASE_URL"):
            embedded.stop(home)


if __name__ == "__main__":
    sys.exit(main())
