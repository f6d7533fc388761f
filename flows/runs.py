"""Starting runs and reading them back from ``ctl`` for `pmw run` and `pmw status`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from flows import database, migrate, prefect_server
from flows.settings import Settings
from flows.settings import load as load_settings
from flows.sources import SOURCES


def run_pipeline(
    as_of: datetime | None = None,
    full_refresh: bool = False,
    sources: list[str] | None = None,
    force_deletes: bool = False,
    backfill_from: date | None = None,
    allow_earlier_as_of: bool = False,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Run the warehouse flow once in this process, against PREFECT_API_URL or the local Prefect server."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    from flows.warehouse_flow import warehouse

    with prefect_api(settings or load_settings()), without_flow_heartbeats():
        return warehouse(
            as_of=as_of,
            full_refresh=full_refresh,
            sources=sources,
            force_deletes=force_deletes,
            backfill_from=backfill_from,
            allow_earlier_as_of=allow_earlier_as_of,
        )


@contextmanager
def prefect_api(settings: Settings) -> Iterator[str]:
    """Point Prefect at PREFECT_API_URL when it is set (the user's server or Cloud wins), else at the local
    Prefect server of PMW_HOME, started if it is not running; yields the API URL."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        yield str(configured)
        return
    server = prefect_server.ensure_running(settings.home_path)
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield server.api_url


@contextmanager
def without_flow_heartbeats() -> Iterator[None]:
    """Flow calls in this process without Prefect's flow-run heartbeats, unless they are configured
    (PREFECT_FLOWS_HEARTBEAT_FREQUENCY in the environment or the Prefect profile).

    Why: Prefect 3.9 joins the heartbeat thread as a sync flow call ends, and the thread sleeps in 1 s steps:
    0.4-0.8 s of every `pmw run` (bench_prefect_overhead.py). A heartbeat only lets a server, with an
    automation for it, mark a run whose process died as crashed; a `pmw run` has its terminal for that, and
    the next run closes a dead process's ``ctl.run`` row itself. Deployments, which a worker runs without
    pmw, keep Prefect's default.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings, temporary_settings

    if "heartbeat_frequency" in get_current_settings().flows.model_fields_set:
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def require_current_warehouse(settings: Settings) -> None:
    """Raise MigrationError unless the warehouse is at the code's head revision (`pmw run` asks before it starts)."""
    _engine(settings)


def _engine(settings: Settings) -> sa.Engine:
    """The warehouse's engine, once its schema is known to be the one this code reads (else MigrationError)."""
    engine = database.engine_for(database.warehouse_url(settings))
    migrate.require_head(engine)
    return engine


def step_rows(engine: sa.Engine, run_id: int) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT step_name, status, rows_read, rows_inserted, rows_updated, rows_deleted, duration_ms "
                    "FROM ctl.run_step WHERE run_id = :r ORDER BY run_step_id"
                ),
                {"r": run_id},
            )
        )


def step_details(engine: sa.Engine, run_id: int) -> dict[str, list[str]]:
    """Per step: what it wrote in each table (inserted/updated/deleted) and what its rows mean, as text."""
    details: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for row in conn.execute(
            sa.text("SELECT step_name, table_name, rows_inserted, rows_updated, rows_deleted FROM ctl.run_step_table "
                    "WHERE run_id = :r ORDER BY step_name, table_name"), {"r": run_id}
        ):  # fmt: skip
            details.setdefault(row.step_name, []).append(
                f"{row.table_name} +{row.rows_inserted:,} ~{row.rows_updated:,} -{row.rows_deleted:,}"
            )
        for row in conn.execute(
            sa.text("SELECT step_name, meaning, value FROM ctl.run_step_meaning WHERE run_id = :r AND value <> 0 "
                    "ORDER BY step_name, meaning"), {"r": run_id}
        ):  # fmt: skip
            details.setdefault(row.step_name, []).append(f"{row.meaning.replace('_', ' ')} {row.value:,}")
    return details


def print_run(settings: Settings, run_id: int) -> None:
    """The run's steps: rows read, rows physically written over all tables, and per table and meaning."""
    _print_steps(_engine(settings), run_id)


def _print_steps(engine: sa.Engine, run_id: int) -> None:
    details = step_details(engine, run_id)
    print(f"{'step':<38} {'status':<8} {'read':>9} {'inserted':>9} {'updated':>9} {'deleted':>9} {'ms':>7}  detail")
    for row in step_rows(engine, run_id):
        print(
            f"{row.step_name:<38} {row.status:<8} {row.rows_read:>9,} {row.rows_inserted:>9,} {row.rows_updated:>9,} "
            f"{row.rows_deleted:>9,} {row.duration_ms or 0:>7,}  {'; '.join(details.get(row.step_name, []))}"
        )


def print_status(settings: Settings, limit: int = 5) -> None:
    engine = _engine(settings)
    with engine.connect() as conn:
        run_table = sa.table(
            "run", *(sa.column(c) for c in ("run_id", "status", "as_of_at", "started_at", "ended_at", "error_text")),
            schema="ctl",
        )  # fmt: skip
        runs = list(
            conn.execute(sa.select(run_table).order_by(run_table.c.run_id.desc()).limit(limit))
        )  # TOP on SQL Server
        marks = list(
            conn.execute(
                sa.text("SELECT source_object, source_partition, cursor_value, run_id FROM ctl.watermark ORDER BY 1, 2")
            )
        )
        pulls = list(
            conn.execute(
                sa.text(
                    "SELECT s.source_object, s.source_partition, s.window_from, s.window_to, s.rows_read, "
                    "l.rows_unchanged FROM ctl.run_source AS s LEFT JOIN ctl.run_source_load AS l "
                    "ON l.run_id = s.run_id AND l.source_object = s.source_object "
                    "AND l.source_partition = s.source_partition "
                    "WHERE s.run_id = :r AND s.strategy = 'cursor' ORDER BY 1, 2"
                ),
                {"r": runs[0].run_id if runs else None},
            )
        )
    if not runs:
        print("no runs yet: start one with `pmw run`")
        return
    print(f"{'run':>5} {'status':<8} {'as of (UTC)':<26} {'seconds':>8}  error")
    for run in runs:
        seconds = (run.ended_at - run.started_at).total_seconds() if run.ended_at else None
        shown = f"{seconds:8.2f}" if seconds is not None else "       -"
        print(f"{run.run_id:>5} {run.status:<8} {run.as_of_at.isoformat():<26} {shown}  {run.error_text or ''}")
    print(f"\nsteps of run {runs[0].run_id}:")
    _print_steps(engine, runs[0].run_id)
    if pulls:
        print(f"\ncursor pulls of run {runs[0].run_id} (unchanged: re-read rows dropped as loaded before):")
        for pull in pulls:
            window = f"{pull.window_from or 'beginning'} .. {pull.window_to}"
            unchanged = "not compared" if pull.rows_unchanged is None else f"{pull.rows_unchanged:,} unchanged"
            print(f"  {pull.source_object:<20} {pull.source_partition or '-':<10} {window:<44} "
                  f"{pull.rows_read:>9,} read, {unchanged}")  # fmt: skip
    print("\nwatermarks:")
    for mark in marks:
        print(f"  {mark.source_object:<20} {mark.source_partition or '-':<10} {mark.cursor_value}  (run {mark.run_id})")


QUALITY_RESULTS_SQL = (
    "SELECT check_name, severity, status, failing_count, threshold, sample_keys, message, checked_at "
    "FROM ctl.data_quality_result WHERE run_id = :r "
    "ORDER BY CASE status WHEN 'pass' THEN 1 ELSE 0 END, severity, check_name"
)
QUARANTINE_SUMMARY_SQL = (
    "SELECT source_object, reason, count(*) AS row_count, min(business_key) AS first_key FROM ctl.quarantine "
    "WHERE run_id = :r GROUP BY source_object, reason ORDER BY source_object, reason"
)


def quality_results(conn: sa.Connection, run_id: int | None) -> list[sa.Row[Any]]:
    """The run's quality results, failures first (what `pmw dq` and the run's artifact show)."""
    return list(conn.execute(sa.text(QUALITY_RESULTS_SQL), {"r": run_id}))


def quarantine_summary(conn: sa.Connection, run_id: int) -> list[sa.Row[Any]]:
    """The rows the run quarantined, per source and reason, with the first key of each."""
    return list(conn.execute(sa.text(QUARANTINE_SUMMARY_SQL), {"r": run_id}))


SAMPLE_WIDTH = 90  # characters of sample keys per line (all of them are in ctl.data_quality_result)


def print_quality(settings: Settings, run_id: int | None = None) -> bool:
    """The quality results of one run (default: the latest run that has any). False if there are none."""
    with _engine(settings).connect() as conn:
        if run_id is None:
            run_id = conn.execute(sa.text("SELECT max(run_id) FROM ctl.data_quality_result")).scalar()
        results = quality_results(conn, run_id)
    if not results:
        print("no quality results yet: they are recorded by every `pmw run`" if run_id is None else
              f"run {run_id} has no quality results (it stopped before its checks, or does not exist)")  # fmt: skip
        return False
    print(f"quality checks of run {run_id} (checked {results[0].checked_at.isoformat()}):")
    width = max(len(r.check_name) for r in results)
    print(f"{'check':<{width}} {'severity':<8} {'status':<6} {'failing':>8} {'allowed':>8}  sample")
    for r in results:
        detail = r.sample_keys or r.message or ""
        detail = detail if len(detail) <= SAMPLE_WIDTH else detail[: SAMPLE_WIDTH - 3] + "..."
        print(f"{r.check_name:<{width}} {r.severity:<8} {r.status:<6} {r.failing_count:>8,} {r.threshold:>8,}  "
              f"{detail}")  # fmt: skip
    failed = [r for r in results if r.status != "pass"]
    blocking = [r.check_name for r in failed if r.severity == "error"]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed"
          + (f"; failing the run: {', '.join(blocking)}" if blocking else ""))  # fmt: skip
    return True


# The statements of `pmw status`, `pmw demo` and the mart highlights are plain SQL both dialects run (no
# LIMIT, FILTER or EXTRACT): the first rows are taken by the client, durations computed in Python.
# tests/test_runs_sql.py parses every one of them as T-SQL.
BACKLOG_SQL = (
    "SELECT project_name, sum(open_issues) AS open_issues, sum(high_priority_open) AS high "
    "FROM mart.issue_backlog_age GROUP BY project_name ORDER BY 2 DESC, 1"
)
REVIEWS_SQL = (
    "SELECT sum(completed_on_time) AS on_time, sum(completed) AS completed, sum(overdue) AS overdue "
    "FROM mart.review_performance"
)
VARIANCES_SQL = (
    "SELECT project_name, service_code, earned_value, claimed, variance FROM mart.service_financials "
    "WHERE month = (SELECT max(month) FROM mart.service_financials) ORDER BY abs(variance) DESC, project_name"
)
ATTENTION_SQL = (
    "SELECT attention, count(*) AS projects FROM mart.project_scorecard WHERE attention IS NOT NULL "
    "GROUP BY attention ORDER BY 2 DESC, 1"
)
RUN_TIMES_SQL = (
    "SELECT started_at, ended_at, (SELECT sum(duration_ms) FROM ctl.run_step AS s WHERE s.run_id = r.run_id) "
    "AS steps_ms FROM ctl.run AS r WHERE run_id = :r"
)


def dimension_counts(name: str) -> sa.Select[Any]:
    """Current rows and all versions of ``dim.<name>`` (its unknown member left out)."""
    dim = sa.table(name, sa.column(f"{name}_sk"), sa.column("is_current"), schema="dim")
    current = sa.func.sum(sa.case((dim.c.is_current == sa.true(), 1), else_=0))  # = 1 on SQL Server's BIT
    return sa.select(sa.func.coalesce(current, 0), sa.func.count()).where(dim.c[f"{name}_sk"] != -1)


def print_mart_highlights(settings: Settings, limit: int = 3) -> None:
    """A few lines from the marts: open issues, review punctuality, fee variances, what needs attention."""
    with _engine(settings).connect() as conn:
        backlog = conn.execute(sa.text(BACKLOG_SQL)).fetchmany(limit)
        reviews = conn.execute(sa.text(REVIEWS_SQL)).one()
        variances = conn.execute(sa.text(VARIANCES_SQL)).fetchmany(limit)
        attention = conn.execute(sa.text(ATTENTION_SQL)).all()
    print("Projects with the most open issues (mart.issue_backlog_age):")
    for row in backlog:
        print(f"  {row.project_name:<40} {row.open_issues:>6,} open, {row.high:>5,} high priority")
    rate = f"{reviews.on_time / reviews.completed:.0%}" if reviews.completed else "-"
    print(f"Reviews delivered on time (mart.review_performance): {rate} of {reviews.completed or 0:,} completed; "
          f"{reviews.overdue or 0:,} overdue now")  # fmt: skip
    print("Largest fee variances this month, earned - claimed (mart.service_financials):")
    for row in variances:
        print(f"  {row.project_name:<40} {row.service_code:<8} earned {row.earned_value:>12,.2f} "
              f"claimed {row.claimed:>12,.2f} variance {row.variance:>12,.2f}")  # fmt: skip
    needing = ", ".join(f"{row.projects:,} with {row.attention}" for row in attention) or "none"
    print(f"Projects needing attention this month (mart.project_scorecard): {needing}")


def latest_run_id(settings: Settings) -> int | None:
    with _engine(settings).connect() as conn:
        value = conn.execute(sa.text("SELECT max(run_id) FROM ctl.run WHERE status <> 'skipped'")).scalar()
        return int(value) if value is not None else None


# The dimensions the declared sources load, in load order (one source, one loader, one dimension).
DIMENSIONS = tuple(source.procedure.removeprefix("warehouse.load_dim_") for source in SOURCES)


def print_demo_summary(settings: Settings, run_ids: list[int]) -> None:
    """Rows per dimension, versions each run created, and how long each run took."""
    with _engine(settings).connect() as conn:
        print(
            f"{'dimension':<18} {'current rows':>13} {'versions':>9} "
            + " ".join(f"{'run ' + str(r):>9}" for r in run_ids)
        )
        for name in DIMENSIONS:
            current, versions = conn.execute(dimension_counts(name)).one()
            created = [
                conn.execute(
                    sa.text(f"SELECT count(*) FROM dim.{name} WHERE run_id = :r AND {name}_sk <> -1"), {"r": run_id}
                ).scalar()
                for run_id in run_ids
            ]
            print(f"{name:<18} {current:>13,} {versions:>9,} " + " ".join(f"{n:>9,}" for n in created))
        print("\n(run columns: versions written by that run)")
        for run_id in run_ids:
            started, ended, steps_ms = conn.execute(sa.text(RUN_TIMES_SQL), {"r": run_id}).one()
            print(
                f"run {run_id}: {(ended - started).total_seconds():.2f} s in the run, "
                f"{int(steps_ms or 0) / 1000:.2f} s of it in database steps"
            )
