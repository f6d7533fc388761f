"""The warehouse pipeline's units of work, independent of the orchestrator.

Each function does one step of a run and records it through the run log; the Prefect flow
(``flows/warehouse_flow.py``) wraps them as retryable tasks. All of them are safe to repeat: a pull
empties its staging table first, and a procedure re-applied to the same staging changes nothing.

The fact and bridge procedures run in one transaction of their own: ``flows/fact_phase.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows import (
    database,
    dialects,
    extract,
    loaded_rows,
    quality,
    retention,
    roles,
    source_schema,
    table_counts,
    validation,
)
from flows.errors import ConfigurationError
from flows.facts import FACT_LOADS
from flows.key_sets import close_vanished, stage_key_set
from flows.run_log import RunLog, StepCounts
from flows.settings import Settings
from flows.sources import SOURCES, SOURCES_BY_NAME, SourceObject

PUBLISH_STEP = "publish facts"  # the fact phase's commit: its duration is what atomic publication costs

CALENDAR_STEP = "warehouse.load_dim_date"
WATERMARK_STEP = "move watermarks"
QUALITY_STEP = "quality checks"


def pull_step(source: SourceObject) -> str:
    return f"pull {source.name}"


def step_plan(sources: tuple[SourceObject, ...] = SOURCES) -> list[tuple[str, str]]:
    """Every step of a run over ``sources``, in order, each with the table it writes first (its name in
    ``ctl.run_step``, and where a fault or a lock meets it)."""
    return [
        *((pull_step(s), f"stg.{s.staging_table}") for s in sources),
        (CALENDAR_STEP, "dim.date"),
        *((s.procedure, "dim." + s.procedure.removeprefix("warehouse.load_dim_")) for s in sources),
        *((load.procedure, load.writes[0]) for load in FACT_LOADS),
        (PUBLISH_STEP, "ctl.publication"),
        (WATERMARK_STEP, "ctl.watermark"),
        (QUALITY_STEP, "ctl.data_quality_result"),
    ]


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
        source_url = database.source_url(settings, warehouse_url)
        same = warehouse_url.render_as_string(hide_password=False) == source_url.render_as_string(hide_password=False)
        warehouse = database.engine_for(warehouse_url)
        context = cls(settings, warehouse, warehouse if same else database.engine_for(source_url), same)
        context.check_zones()
        return context

    def database_zone(self, zone: str) -> str:
        """The IANA ``zone`` as the warehouse's SQL names it (``Dialect.zone_name``)."""
        return dialects.of(self.warehouse).zone_name(zone)

    def check_zones(self) -> None:
        """Fail before anything is read when the warehouse's database has no name for a configured zone."""
        for setting, zone in (("PMW_BUSINESS_TIMEZONE", self.settings.business_timezone),
                              ("PMW_SOURCE_TIMEZONE", self.settings.source_timezone)):  # fmt: skip
            try:
                self.database_zone(zone)
            except ValueError as exc:
                raise ConfigurationError(
                    setting, zone, f"a zone {self.warehouse.dialect.name} can convert times in", str(exc)
                ) from None

    @property
    def checks_engine(self) -> Engine:
        """Where the quality checks connect: on the embedded server (which trusts local connections) as the
        analyst's own login, so that not even a crafted check can take the superuser's role back; elsewhere the
        warehouse URL's user, which the checks leave for the analyst's role (``SET ROLE``) where it may."""
        if self.settings.warehouse_url is not None:  # none configured: the warehouse is the embedded server's
            return self.warehouse
        return database.engine_for(self.warehouse.url.set(username=roles.CHECK_ROLE))

    @property
    def run_log(self) -> RunLog:
        return RunLog(self.warehouse)


def default_as_of(ctx: Context) -> datetime:
    """The as-of of a run that names none: now, or the demo source's simulated clock where the source is the
    demo generator's (its clock runs ahead of, or behind, the wall clock: a run at 'now' would be a run at
    another day than the source's)."""
    from flows import demo_source

    clock = demo_source.clock(ctx.source)
    return datetime.now(UTC) if clock is None else clock.replace(tzinfo=UTC)


def plan_windows(
    ctx: Context,
    source: SourceObject,
    watermarks: dict[tuple[str, str], datetime | None],
    as_of: datetime,
    full_refresh: bool,
) -> list[extract.ExtractWindow]:
    """The windows of one source for this run, with the run's look-back and source time zone."""
    return extract.plan_windows(
        source, watermarks, as_of=as_of, lookback=timedelta(hours=ctx.settings.lookback_hours),
        source_timezone=ctx.settings.source_timezone, warehouse_dialect=ctx.warehouse.dialect.name,
        full_refresh=full_refresh,
    )  # fmt: skip


def check_windows(ctx: Context, sources: tuple[SourceObject, ...], as_of: datetime, full_refresh: bool) -> None:
    """Plan every source's windows before anything is read: a watermark later than the source's clock stops
    the run here (``extract.WindowOutOfOrder``), not after some sources were pulled."""
    watermarks = ctx.run_log.watermarks()
    for source in sources:
        plan_windows(ctx, source, watermarks, as_of, full_refresh)


def pull_source(ctx: Context, source_name: str, run_id: int, as_of: datetime, full_refresh: bool) -> StepCounts:
    """Stage the delta (or, for full-compare sources, the whole table) of one source object."""
    source = SOURCES_BY_NAME[source_name]
    log = ctx.run_log
    with log.step(run_id, pull_step(source)) as counts:
        windows = plan_windows(ctx, source, log.watermarks(), as_of, full_refresh)
        # schema drift (a missing column, a changed type family): stop before anything is written
        source_schema.check_source_columns(ctx.source, ctx.warehouse, source)
        loaded_rows.remember_loaded(ctx.warehouse, source, windows)  # before the last run's rows are emptied
        emptied = extract.clear_staging(ctx.warehouse, source)
        if emptied:  # the row counters do not see a TRUNCATE
            table_counts.add(counts.tables, {f"stg.{source.staging_table}": (0, 0, emptied)})
        counts.meanings["emptied"] = emptied  # the previous run's staged rows
        misfits = 0  # rows with a value too long or too large for its staging column: quarantined, not staged
        for window in windows:
            rows, newest, quarantined = validation.pull_fitting(
                ctx.source, ctx.warehouse, source, window, run_id, same_database=ctx.same_database
            )
            misfits += quarantined
            log.record_window(run_id, window, rows, newest)
            counts.rows_read += rows
        stage_key_set(ctx, source, run_id, counts)  # after the delta: flows/key_sets.py says why
        # rejected rows leave staging for ctl.quarantine
        counts.meanings["quarantined"] = validation.quarantine_staged(
            ctx.warehouse, source, run_id, as_of, ctx.settings.source_timezone, ctx.settings.quarantine_max_share,
            rejected_before=misfits,
        )  # fmt: skip
        counts.meanings["quarantine_purged"] = retention.purge_quarantined_rows(
            ctx.warehouse, source.name, ctx.settings.quarantine_retention_days
        )
        # rows of the look-back window loaded before and unchanged since: no need to merge them again
        dropped = loaded_rows.drop_unchanged(ctx.warehouse, source, windows, run_id)
        if source.strategy == "cursor":
            counts.meanings["unchanged"] = sum(n or 0 for n in dropped.values())
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
        database.set_transaction_setting(conn, "pmw.max_delete_share_min_rows", ctx.settings.max_delete_share_min_rows)
        kept = validation.keep_quarantined_keys(conn, source, run_id)  # quarantined is not deleted
        reported = database.call_procedure(conn, source.procedure, {"p_run_id": run_id, "p_as_of": as_of})
        counts.meanings.update(scd2_meanings(reported))
        close_vanished(conn, ctx.settings, source, run_id, as_of, force_deletes, counts.meanings)
        if kept:
            validation.drop_kept_keys(conn)
        loaded_rows.mark_loaded(conn, source, run_id)  # the next pull may now compare with these rows
        counts.rows_read = int(
            conn.execute(sa.text(f"SELECT count(*) FROM stg.{source.staging_table} WHERE run_id = :r"), {"r": run_id})
            .scalar_one()
        )  # fmt: skip
    return counts


def scd2_meanings(reported: dict[str, int]) -> dict[str, int]:
    """What warehouse.merge_scd2's counts mean, in the run log's words. It reports new keys (rows_inserted),
    versions closed for a change or a deletion (rows_closed), deleted versions added (rows_deleted), and, as
    rows_updated, the versions closed for a change plus the inferred members it completed in place."""
    closed, deleted = reported.get("rows_closed", 0), reported.get("rows_deleted", 0)
    return {
        "new_keys": reported.get("rows_inserted", 0),
        "new_versions": closed - deleted,  # a changed key's new version, beside the one it closed
        "versions_closed": closed,
        "deleted_at_source": deleted,
        "inferred_completed": reported.get("rows_updated", 0) - (closed - deleted),
    }


def load_calendar(ctx: Context, run_id: int, as_of: datetime) -> StepCounts:
    """Keep the date dimension covering calendar_start to calendar_years_ahead past the as-of year."""
    settings = ctx.settings
    end = date(as_of.year + settings.calendar_years_ahead, 12, 31)
    with ctx.run_log.step(run_id, CALENDAR_STEP) as counts, ctx.warehouse.begin() as conn:
        if _calendar_complete(conn, settings.calendar_start, end, settings.fiscal_year_start_month):
            return counts  # every day is there with this fiscal year: nothing to compute
        arguments = {
            "p_start_date": settings.calendar_start,
            "p_end_date": end,
            "p_fiscal_year_start_month": settings.fiscal_year_start_month,
        }
        database.call_procedure(conn, "warehouse.load_dim_date", arguments)  # its counts are the physical ones
        counts.rows_read = (end - settings.calendar_start).days + 1
    return counts


def move_watermarks(ctx: Context, run_id: int) -> StepCounts:
    """After every load committed: advance each cursor watermark to the newest value this run staged."""
    with ctx.run_log.step(run_id, WATERMARK_STEP) as counts:
        ctx.run_log.move_watermarks(run_id)
    return counts


def check_quality(ctx: Context, run_id: int, as_of: datetime) -> list[quality.CheckResult]:
    """Run every configured quality check and record each result; the caller decides the run's fate."""
    checks = quality.load_checks(ctx.settings.quality_checks)
    with ctx.run_log.step(run_id, QUALITY_STEP) as counts:
        summarize = dialects.of(ctx.warehouse).summarize_new_ranges_sql()
        if summarize is not None:  # the checks of the run's rows then read only the run's own block ranges
            with ctx.warehouse.begin() as conn:
                conn.exec_driver_sql(summarize)
        results = quality.run_checks(
            ctx.checks_engine, checks, as_of, run_id, ctx.settings.business_timezone,
            as_role=roles.CHECK_ROLE, timeout_seconds=ctx.settings.quality_check_timeout_seconds,
        )  # fmt: skip
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
