"""The warehouse flow: the `prefect.yaml` entrypoint, also run by `pmw run`.

One run: take the run lock (or end ``skipped``), close runs left ``running`` by a dead process,
refuse an as-of earlier than the last published one, pull each source (a task per source), load the
date dimension and each dimension (a task per procedure), run the fact phase (a task per fact and bridge
procedure, all in one transaction, then a task that publishes it), move the watermarks, run the quality
checks (a task), close the run (``failed`` if a check of severity error failed) and publish its report as
an artifact. Tasks retry with backoff on transient database errors only, and never cache: they write, so
every call must really run. The fact phase retries as a whole (a transaction cannot be resumed halfway).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff
from pydantic import BaseModel, field_validator

from flows import artifacts, database, fact_phase, pipeline, quality
from flows.errors import QualityGateFailed
from flows.facts import FACT_LOADS
from flows.redaction import install_log_scrubbing, scrubbed_errors
from flows.run_log import error_text
from flows.settings import Settings
from flows.settings import load as load_settings
from flows.sources import select_sources

TASK_RETRIES = 3


def _retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only connection loss, deadlocks and serialization failures."""
    try:
        state.result()
    except Exception as exc:
        return database.is_transient(exc)
    return False


_task_options: dict[str, Any] = {
    "retries": TASK_RETRIES,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_condition_fn": _retry_transient,
    "cache_policy": NO_CACHE,
    "persist_result": False,
}


class RunParameters(BaseModel):
    """The flow's arguments, validated, as the run records them in ``ctl.run.parameters``."""

    as_of: datetime | None = None
    full_refresh: bool = False
    sources: list[str] | None = None
    backfill_from: date | None = None
    force_deletes: bool = False
    allow_earlier_as_of: bool = False

    @field_validator("as_of")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # a naive as-of is read as UTC
        return value


@task(name="pull_source", task_run_name="pull {source_name}", **_task_options)
def pull_source(source_name: str, run_id: int, as_of: datetime, full_refresh: bool) -> dict[str, int]:
    with scrubbed_errors():
        ctx = pipeline.Context.from_settings(load_settings())
        return _summary(pipeline.pull_source(ctx, source_name, run_id, as_of, full_refresh))


@task(name="run_procedure", task_run_name="{procedure}", **_task_options)
def run_procedure(
    procedure: str, source_name: str | None, run_id: int, as_of: datetime, force_deletes: bool = False
) -> dict[str, int]:
    with scrubbed_errors():
        ctx = pipeline.Context.from_settings(load_settings())
        if source_name is None:
            return _summary(pipeline.load_calendar(ctx, run_id, as_of))
        return _summary(pipeline.load_dimension(ctx, source_name, run_id, as_of, force_deletes))


# inside the fact phase's transaction: a failure rolls the phase back, and the phase is what retries
_fact_task_options = {**_task_options, "retries": 0}


@task(name="run_fact_procedure", task_run_name="{procedure}", **_fact_task_options)
def run_fact_procedure(
    procedure: str, run_id: int, as_of: datetime, backfill_from: date | None = None
) -> dict[str, int]:
    with scrubbed_errors():
        ctx = pipeline.Context.from_settings(load_settings())
        return _summary(fact_phase.load_fact(ctx, procedure, run_id, as_of, backfill_from))


@task(name="publish_facts", task_run_name="publish facts", **_fact_task_options)
def publish_facts(run_id: int) -> dict[str, int]:
    with scrubbed_errors():
        return _summary(fact_phase.publish_facts(pipeline.Context.from_settings(load_settings()), run_id))


def _summary(counts: pipeline.StepCounts) -> dict[str, int]:
    inserted, updated, deleted = counts.totals
    return {"rows_read": counts.rows_read, "rows_inserted": inserted, "rows_updated": updated, "rows_deleted": deleted}


def _run_fact_phase(ctx: pipeline.Context, run: Any, as_of: datetime, backfill_from: date | None) -> None:
    """Every fact and bridge procedure in one transaction, then its commit; redone whole on a transient error."""
    for attempt in range(TASK_RETRIES + 1):
        fact_phase.open_fact_phase(ctx, run)
        try:
            for load in FACT_LOADS:
                run_fact_procedure(load.procedure, run.run_id, as_of, backfill_from=backfill_from)
            publish_facts(run.run_id)
            return
        except BaseException as exc:
            fact_phase.abandon_fact_phase(ctx, run.run_id)
            if attempt == TASK_RETRIES or not database.is_transient(exc):
                raise
        time.sleep(2 ** (attempt + 1))  # the tasks' backoff: 2, 4, 8 s


@task(name="quality_checks", task_run_name="quality checks", **_task_options)
def quality_checks(run_id: int, as_of: datetime) -> list[str]:
    """Run and record every quality check; returns the names of failed checks of severity error."""
    with scrubbed_errors():
        ctx = pipeline.Context.from_settings(load_settings())
        return [result.check.name for result in pipeline.check_quality(ctx, run_id, as_of) if result.blocks_run]


FLOW_DESCRIPTION = (
    "One warehouse run: pull every source into staging, load the date dimension and the SCD type-2 dimensions, "
    "load the facts and bridges in one published transaction, move the watermarks, run the quality checks, "
    "and publish the run's report as the `warehouse-run` artifact."
)


@flow(name="warehouse", log_prints=True, description=FLOW_DESCRIPTION)
def warehouse(
    as_of: datetime | None = None,
    full_refresh: bool = False,
    sources: list[str] | None = None,
    backfill_from: date | None = None,
    force_deletes: bool = False,
    allow_earlier_as_of: bool = False,
) -> dict[str, Any]:
    """Run the warehouse pipeline once; returns the run id and its status.

    Args:
        as_of: The run's as-of instant (ISO 8601; a value without an offset is UTC). Default: now, or the
            demo source's clock.
        full_refresh: Re-read the cursor sources from the beginning instead of from their watermarks.
        sources: Only these source objects (names as `pmw run --source` takes them). Default: all.
        backfill_from: Recompute the daily issue snapshot (and the project months it feeds) for every issue
            from this local date (YYYY-MM-DD) to the as-of date, before the first snapshot date too.
        force_deletes: Let this run close more of a dimension's rows as deleted at the source than the
            max_delete_share circuit breaker allows (after checking the source really deleted them).
        allow_earlier_as_of: Run at an as-of earlier than the last published run's (refused otherwise; to
            recompute past days, a backfill at the current as-of is the usual way).
    """
    parameters = RunParameters(
        as_of=as_of, full_refresh=full_refresh, sources=sources, backfill_from=backfill_from,
        force_deletes=force_deletes, allow_earlier_as_of=allow_earlier_as_of,
    )  # fmt: skip
    with scrubbed_errors():
        settings = load_settings()
        install_log_scrubbing(show_tracebacks=settings.log_level == "DEBUG")
        return _run(settings, parameters)


def _run(settings: Settings, parameters: RunParameters) -> dict[str, Any]:
    """The run itself (the flow wraps it so that nothing it raises carries a secret)."""
    sources = select_sources(parameters.sources)
    ctx = pipeline.Context.from_settings(settings)
    as_of = parameters.as_of or pipeline.default_as_of(ctx)
    log = ctx.run_log
    from prefect.runtime import flow_run

    run = log.open(
        as_of,
        parameters.model_dump(mode="json"),
        str(flow_run.id) if flow_run.id else None,
        migration_wait_seconds=ctx.settings.migration_wait_seconds,
        allow_earlier_as_of=parameters.allow_earlier_as_of,
    )
    if run is None:
        print("another warehouse run holds the run lock: this run is skipped and changed nothing")
        return {"run_id": None, "status": "skipped"}
    try:
        quality.load_checks(ctx.settings.quality_checks)  # a bad check declaration stops the run before it reads
        pipeline.check_windows(ctx, sources, as_of, parameters.full_refresh)
        for source in sources:
            pull_source(source.name, run.run_id, as_of, parameters.full_refresh)
        run_procedure("warehouse.load_dim_date", None, run.run_id, as_of)
        for source in sources:
            run_procedure(source.procedure, source.name, run.run_id, as_of, parameters.force_deletes)
        _run_fact_phase(ctx, run, as_of, parameters.backfill_from)
        # the loads are committed: the watermarks follow them whatever the checks find
        pipeline.move_watermarks(ctx, run.run_id)
        failed_checks = quality_checks(run.run_id, as_of)
    except BaseException as exc:
        log.close(run, "failed", error_text(exc))
        artifacts.publish_run(ctx.warehouse, run.run_id)
        raise
    if failed_checks:
        error = f"quality checks of severity error failed: {', '.join(failed_checks)} (see `pmw dq`)"
        log.close(run, "failed", error)
        artifacts.publish_run(ctx.warehouse, run.run_id)
        raise QualityGateFailed(error)
    log.close(run, "success")
    artifacts.publish_run(ctx.warehouse, run.run_id)
    print(f"run {run.run_id} succeeded (as of {as_of.isoformat()})")
    return {"run_id": run.run_id, "status": "success"}
