"""The fact phase: a run's fact and bridge procedures, published atomically.

Every fact and bridge procedure of a run works in one transaction, each inside a savepoint of its own (and
still a Prefect task of its own), and the phase commits once, with the run log's record of what it completed
(``ctl.step_state``) and the run's as-of date (``ctl.publication``, what the marts call "latest"). A reader
never sees facts of two runs mixed: until the commit every reader sees the previous run's facts whole, and a
failure anywhere in the phase rolls all of it back. What each procedure recomputes follows from
``ctl.step_state``: the run whose committed phase it last completed, handed over as ``p_since_run_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from flows import database, table_counts
from flows.facts import FACT_LOADS_BY_PROCEDURE, FACT_PROCEDURES
from flows.pipeline import PUBLISH_STEP, Context
from flows.run_log import Run, Since, StepCounts


@dataclass
class FactPhase:
    """The one transaction in which a run's fact and bridge procedures run; published at its commit."""

    run: Run
    conn: sa.Connection
    since: dict[str, Since]
    completed: list[str] = field(default_factory=list)


_PHASES: dict[int, FactPhase] = {}  # run id -> its open phase (the flow's tasks run in its process)


def open_fact_phase(ctx: Context, run: Run) -> FactPhase:
    """Begin the fact phase of ``run``: one connection and transaction for every fact and bridge step."""
    conn = ctx.warehouse.connect()
    conn.info[table_counts.SKIP] = True  # each step counts its own share of this transaction
    try:
        conn.begin()
        since = ctx.run_log.since(conn, FACT_PROCEDURES)
    except BaseException:
        conn.info.pop(table_counts.SKIP, None)
        conn.close()
        raise
    phase = FactPhase(run, conn, since)
    _PHASES[run.run_id] = phase
    return phase


def fact_phase(run_id: int) -> FactPhase:
    try:
        return _PHASES[run_id]
    except KeyError:
        raise RuntimeError(f"run {run_id} has no open fact phase in this process") from None


def load_fact(
    ctx: Context, procedure: str, run_id: int, as_of: datetime, backfill_from: date | None = None
) -> StepCounts:
    """Run one fact or bridge procedure inside the run's fact phase, in a savepoint of its own. What it
    (re)computes follows from what changed since the run behind its ``since`` (and, for a backfill, from
    the date it is given)."""
    load, phase = FACT_LOADS_BY_PROCEDURE[procedure], fact_phase(run_id)
    since = phase.since[procedure]
    arguments: dict[str, object] = {
        "p_run_id": run_id, "p_as_of": as_of, "p_time_zone": ctx.database_zone(ctx.settings.business_timezone),
        "p_since_run_id": since.run_id,
    }  # fmt: skip
    if load.since_as_of:
        arguments["p_since_as_of"] = since.as_of
    if load.backfill:
        arguments["p_recompute_from"] = backfill_from
    for parameter, setting in load.settings.items():
        arguments[parameter] = getattr(ctx.settings, setting)
    with ctx.run_log.step(run_id, procedure) as counts:
        with phase.conn.begin_nested():
            before = table_counts.snapshot(phase.conn)
            reported = database.call_procedure(phase.conn, procedure, arguments)
            written = table_counts.difference(table_counts.snapshot(phase.conn), before)
        counts.tables.update(written)
        counts.rows_read = reported.get("rows_read", 0)
        if procedure == "warehouse.add_inferred_members":
            counts.meanings["inferred_members"] = reported.get("rows_inserted", 0)
        phase.completed.append(procedure)
    return counts


def publish_facts(ctx: Context, run_id: int) -> StepCounts:
    """Commit the fact phase: every fact and bridge change of the run becomes visible at once, with the
    run log's record of what each procedure completed and the run's as-of date for the marts."""
    phase = fact_phase(run_id)
    with ctx.run_log.step(run_id, PUBLISH_STEP) as counts:
        ctx.run_log.record_publication(phase.conn, phase.run, phase.completed, ctx.settings.business_timezone)
        phase.conn.commit()
    _close_phase(phase)
    return counts


def abandon_fact_phase(ctx: Context, run_id: int) -> None:
    """Roll the fact phase back (a step failed): nothing of it is published; its done steps say so."""
    phase = _PHASES.get(run_id)
    if phase is None:
        return
    try:
        phase.conn.rollback()
    except sa.exc.DBAPIError:
        phase.conn.invalidate()  # a lost connection: the server rolled it back already
    finally:
        _close_phase(phase)
    ctx.run_log.mark_reverted(run_id, phase.completed)


def _close_phase(phase: FactPhase) -> None:
    _PHASES.pop(phase.run.run_id, None)
    if not phase.conn.invalidated:  # the info stays with the pooled connection: later users must count
        phase.conn.info.pop(table_counts.SKIP, None)
    phase.conn.close()
