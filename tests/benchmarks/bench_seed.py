"""Seeding benchmark: how fast `pmw source seed` and `advance` build the demo source.

Usage: python tests/benchmarks/bench_seed.py [SCALE ...]      (default: 1 100; scale 100 = 1,000,000 issues)

Runs against the embedded server in a temporary data directory (or PMW_TEST_DATABASE_URL), on a fresh
database per scale, and prints one table per scale (steps) and a summary table. Target (issue #2):
1,000,000 issues with the other tables in proportion in under 2 minutes on a 2-core machine.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from flows import database, demo_source, embedded


def admin_url(home: Path) -> URL:
    external = os.environ.get("PMW_TEST_DATABASE_URL")
    return make_url(external) if external else make_url(embedded.ensure_running(home).url("postgres"))


def fresh_database(admin: URL) -> URL:
    name = f"pmw_bench_{uuid.uuid4().hex[:8]}"
    database.ensure_database(admin, name)
    return admin.set(database=name)


def drop(admin: URL, url: URL) -> None:
    database.drop_database(admin, str(url.database))


def main(scales: list[int]) -> None:
    home = Path(tempfile.mkdtemp(prefix="pmw-bench-"))
    admin = admin_url(home)
    summary = []
    try:
        for scale in scales:
            url = fresh_database(admin)
            engine = sa.create_engine(url)
            started = time.perf_counter()
            timings = demo_source.seed(engine, scale=scale, seed_value=42, anchor=datetime(2026, 11, 1))
            seed_seconds = time.perf_counter() - started
            counts = demo_source.row_counts(engine)
            rows = sum(v for k, v in counts.items() if k != "vw_ProjectManagement_AllIssues")
            issues = counts["vw_ProjectManagement_AllIssues"]
            advance_started = time.perf_counter()
            demo_source.advance(engine, days=1)
            advance_seconds = time.perf_counter() - advance_started
            print(f"\nscale {scale}: seed steps")
            print(f"  {'step':<36} {'seconds':>9}")
            for timing in timings:
                print(f"  {timing.step:<36} {timing.seconds:>9.2f}")
            summary.append((scale, issues, rows, seed_seconds, advance_seconds))
            engine.dispose()
            drop(admin, url)
    finally:
        if not os.environ.get("PMW_TEST_DATABASE_URL"):
            embedded.stop(home)
    print("\nseeding throughput")
    print(
        f"  {'scale':>5} {'issues':>10} {'rows':>10} {'seed s':>8} {'issues/s':>10} {'rows/s':>10} "
        f"{'advance 1 day s':>16}"
    )
    for scale, issues, rows, seconds, advance_seconds in summary:
        print(f"  {scale:>5} {issues:>10,} {rows:>10,} {seconds:>8.2f} {issues / seconds:>10,.0f} "
              f"{rows / seconds:>10,.0f} {advance_seconds:>16.2f}")  # fmt: skip


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [1, 100])
