"""The warehouse pipeline's units of work, independent of the orchestrator.

Each function does one step of a run and records it through the run log; the Prefect flow
(``flows/warehouse_flow.py``) wraps them as retryable tasks. All of them are safe to repeat: a pull
empties its staging table first, and a procedure re-applied to the same staging changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows import database, extract, loaded_rows, quality, validation
from flows.facts import SETTING_ARGUMENTS
from flows.run_log import RunLog, StepCounts
from flows.settings import Settings
from flows.sources import SOURCES_BY_NAME


@dataclass(frozen=True)
class Context:
    """Engines and settings of one run."""

    settings: Settings
    warehouse: Engine
    source: Engine
    same_database: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> Context:
        warehouse_url = database.warehouse_url(settings)
        source_url = database.source_url(settings)
        same = warehouse_url.render_as_string(hide_password=False) == source_url.render_as_string(hide_password=False)
        warehouse = database.engine_for(warehouse_url)
        return cls(settings, warehouse, warehouse if same else database.engine_for(source_url), same)

    @property
    def run_log(self) -> RunLog:
        return RunLog(self.warehouse)


def pull_source(ctx: Context, source_name: str, run_id: int, as_of: datetime, full_refresh: bool) -> StepCounts:
    """Stage the delta (or, for full-compare sources, the whole table) of one source object."""
    source = SOURCES_BY_NAME[source_name]
    log = ctx.run_log
    with log.step(run_id, f"pull {source_name}") as counts:
        windows = extract.plan_windows(
            source,
            log.watermarks(),
            as_of=as_of,
            lookback=timedelta(hours=ctx.settings.lookback_hours),
            source_timezone=ctx.settings.source_timezone,
            full_refresh=full_refresh,
        )
        validation.check_source_columns(ctx.source, source)  # schema drift: stop before anything is written
        loaded_rows.remember_loaded(ctx.warehouse, source, windows)  # before the last run's rows are emptied
        extract.clear_staging(ctx.warehouse, source)
        overlong = 0
        for window in windows:
            try:
                rows, newest = extract.pull(
                    ctx.source, ctx.warehouse, source, window, run_id, same_database=ctx.same_database
                )
            except Exception as exc:  # COPY raises the driver's own error, not SQLAlchemy's
                if not validation.is_text_too_long(exc):
                    raise
                # text longer than its staging column failed the pull (rolled back): quarantine those
                # rows and pull the window again without them. Checked only then: it costs a read.
                limits = validation.text_limits(ctx.warehouse, source)
                overlong += validation.quarantine_overlong(ctx.source, ctx.warehouse, source, window, limits, run_id)
                rows, newest = extract.pull(
                    ctx.source, ctx.warehouse, source, window, run_id, same_database=ctx.same_database, limits=limits
                )
            log.record_window(run_id, window, rows, newest)
            counts.rows_read += rows
        # rejected rows leave staging for ctl.quarantine; the run log counts them as the pull's deleted rows
        counts.rows_deleted = validation.quarantine_staged(
            ctx.warehouse, source, run_id, as_of, ctx.settings.source_timezone, ctx.settings.quarantine_max_share,
            rejected_before=overlong,
        )  # fmt: skip
        # rows of the look-back window loaded before and unchanged since: no need to merge them again
        loaded_rows.drop_unchanged(ctx.warehouse, source, windows, run_id)
    return counts


def load_dimension(
    ctx: Context, source_name: str, run_id: int, as_of: datetime, force_deletes: bool = False
) -> StepCounts:
    """Run the procedure that turns one source's staged rows into dimension history.

    The circuit breaker's limit (``max_delete_share``, or no limit when ``force_deletes``) reaches
    ``warehouse.merge_scd2`` as a setting of this transaction, so no procedure signature carries it.
    """
    source = SOURCES_BY_NAME[source_name]
    with ctx.run_log.step(run_id, source.procedure) as counts, ctx.warehouse.begin() as conn:
        database.set_transaction_setting(
            conn, "pmw.max_delete_share", 1.0 if force_deletes else ctx.settings.max_delete_share
        )
        kept = validation.keep_quarantined_keys(conn, source, run_id)  # quarantined is not deleted
        _apply(counts, database.call_procedure(conn, source.procedure, {"p_run_id": run_id, "p_as_of": as_of}))
        if kept:
            validation.drop_kept_keys(conn)
        loaded_rows.mark_loaded(conn, source, run_id)  # the next pull may now compare with these rows
        counts.rows_read = int(
            conn.execute(sa.text(f"SELECT count(*) FROM stg.{source.staging_table} WHERE run_id = :r"), {"r": run_id})
            .scalar_one()
        )  # fmt: skip
    return counts


def load_fact(
    ctx: Context, procedure: str, run_id: int, as_of: datetime, backfill_from: date | None = None
) -> StepCounts:
    """Run one fact or bridge procedure: what it (re)computes follows from the warehouse's own tables, and
    for a backfill from the date it is given (a transaction setting the daily snapshot reads)."""
    arguments = {"p_run_id": run_id, "p_as_of": as_of, "p_time_zone": ctx.settings.business_timezone}
    for parameter, setting in SETTING_ARGUMENTS.get(procedure, {}).items():
        arguments[parameter] = getattr(ctx.settings, setting)
    with ctx.run_log.step(run_id, procedure) as counts, ctx.warehouse.begin() as conn:
        # set on every call, empty when not backfilling: SQL Server keeps a session context value for the
        # life of the (pooled) session
        database.set_transaction_setting(conn, "pmw.recompute_from", backfill_from.isoformat() if backfill_from else "")
        _apply(counts, database.call_procedure(conn, procedure, arguments))
    return counts


def load_calendar(ctx: Context, run_id: int, as_of: datetime) -> StepCounts:
    """Keep the date dimension covering calendar_start to calendar_years_ahead past the as-of year."""
    settings = ctx.settings
    end = date(as_of.year + settings.calendar_years_ahead, 12, 31)
    with ctx.run_log.step(run_id, "warehouse.load_dim_date") as counts, ctx.warehouse.begin() as conn:
        if _calendar_complete(conn, settings.calendar_start, end, settings.fiscal_year_start_month):
            return counts  # every day is there with this fiscal year: nothing to compute
        arguments = {
            "p_start_date": settings.calendar_start,
            "p_end_date": end,
            "p_fiscal_year_start_month": settings.fiscal_year_start_month,
        }
        _apply(counts, database.call_procedure(conn, "warehouse.load_dim_date", arguments))
        counts.rows_read = (end - settings.calendar_start).days + 1
    return counts


def check_quality(ctx: Context, run_id: int, as_of: datetime) -> list[quality.CheckResult]:
    """Run every configured quality check and record each result; the caller decides the run's fate."""
    checks = quality.load_checks(ctx.settings.quality_checks)
    with ctx.run_log.step(run_id, "quality checks") as counts:
        results = quality.run_checks(ctx.warehouse, checks, as_of, run_id)
        ctx.run_log.record_quality(run_id, results)
        counts.rows_read = len(results)
    return results


def _calendar_complete(conn: sa.Connection, start: date, end: date, fiscal_start_month: int) -> bool:
    """Every day is there, with this fiscal year start and every fiscal attribute filled in."""
    dates = sa.table(
        "date", sa.column("full_date"), sa.column("fiscal_year_start_date"), sa.column("fiscal_month_number"),
        sa.column("fiscal_quarter"), schema="dim",
    )  # fmt: skip
    fiscal_month = sa.extract("month", dates.c.fiscal_year_start_date)
    # a column added by a later revision starts NULL on days loaded before it: the loader fills it
    filled = sa.func.count(dates.c.fiscal_month_number) + sa.func.count(dates.c.fiscal_quarter)
    days, low, high, filled_values = conn.execute(
        sa.select(sa.func.count(), sa.func.min(fiscal_month), sa.func.max(fiscal_month), filled).where(
            dates.c.full_date.between(start, end)
        )
    ).one()
    expected = (end - start).days + 1
    return bool(days == expected and low == high == fiscal_start_month and filled_values == 2 * expected)


def _apply(counts: StepCounts, reported: dict[str, int]) -> None:
    for name, value in reported.items():
        if hasattr(counts, name):
            setattr(counts, name, value)
