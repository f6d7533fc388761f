"""Key-set reconciliation: a cursor source's vanished keys are closed as deleted at the source.

A cursor pull reads only rows whose change column moved, so a row that leaves the source is never seen to
go: an issue removed in Revizto (whose deletion flag is always 0), or moved to another tracker project
(which gives it a new identity, the old key simply stops being there). So a reconciling run also stages
the source's whole key set, keys only, into ``stg.<source>_keys`` (one ``INSERT ... SELECT`` when source
and warehouse are one database, else the pulls' bulk path), and the dimension load then closes every live
current key missing from it (``warehouse.close_vanished_keys``: a deleted version, as a full compare gives a
hard delete), under the same circuit breaker, in the load's transaction.

Why this order is safe: the key set is read *after* the delta. A row deleted between the two reads was
staged by the delta but is not in the key set, so it is closed (correct: it is gone); a row inserted
between is in the key set but not in the dimension, so nothing happens to it, and the next pull brings
it. A row quarantined this run is still at the source, so its key is in the key set and its current
version stays. A key too long for its staging column can be in no dimension: it is left out of the set.

"Every N runs" (``PMW_KEY_RECONCILIATION_EVERY_RUNS``) counts the successful dimension loads of that
source since the last one that reconciled; a run that reconciles records ``key_set_read`` (keys staged)
on its pull step and ``vanished_at_source`` (keys closed, 0 included) on its load step, and one that does
not records ``key_set_runs_to_go`` on its pull step, all in ``ctl.run_step_meaning``, so any run can be
explained afterwards. The keys closed also count in the load's ``versions_closed`` and
``deleted_at_source``, which account for the rows the load physically wrote.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from flows import database, extract, loaded_rows, table_counts, validation
from flows.settings import Settings
from flows.sources import SourceObject

if TYPE_CHECKING:
    from flows.pipeline import Context
    from flows.run_log import StepCounts

KEY_SET_READ = "key_set_read"  # pull step: keys of the source staged for this run's reconciliation
RUNS_TO_GO = "key_set_runs_to_go"  # pull step: loads of the source still to come before the next one
VANISHED = "vanished_at_source"  # load step: live keys closed because the key set no longer had them
PROCEDURE = "warehouse.close_vanished_keys"


def reconciled(source: SourceObject) -> bool:
    """Cursor sources are reconciled; a full compare sees its deletions anyway."""
    return source.strategy == "cursor"


def key_table(source: SourceObject) -> str:
    """The staging table of ``source``'s key set (schema stg)."""
    return f"{source.staging_table}_keys"


def dimension_of(source: SourceObject) -> str:
    """The dimension (schema dim) that ``source``'s procedure loads."""
    return source.procedure.removeprefix("warehouse.load_dim_")


def runs_since_reconciliation(conn: Connection, source: SourceObject, run_id: int) -> int | None:
    """Successful loads of ``source`` before ``run_id`` since the last one that reconciled (None: never)."""
    step = {"step": source.procedure, "r": run_id, "m": VANISHED}
    last = conn.execute(
        sa.text("SELECT max(s.run_id) FROM ctl.run_step AS s JOIN ctl.run_step_meaning AS m "
                "ON m.run_id = s.run_id AND m.step_name = s.step_name "
                "WHERE s.step_name = :step AND s.status = 'success' AND m.meaning = :m AND s.run_id < :r"), step,
    ).scalar()  # fmt: skip
    if last is None:
        return None
    return int(
        conn.execute(
            sa.text("SELECT count(*) FROM ctl.run_step WHERE step_name = :step AND status = 'success' "
                    "AND run_id > :last AND run_id < :r"), {**step, "last": last},
        ).scalar_one()
    )  # fmt: skip


def stage_key_set(ctx: Context, source: SourceObject, run_id: int, counts: StepCounts) -> None:
    """In the pull of ``source``, after its delta: stage its whole key set when this run reconciles it (else
    only empty the last one), and record which in ``counts.meanings``."""
    if not reconciled(source):
        return
    table = key_table(source)
    with ctx.warehouse.begin() as conn:
        emptied = int(conn.execute(sa.text(f"SELECT count(*) FROM stg.{table}")).scalar_one())
        conn.execute(sa.text(f"TRUNCATE TABLE stg.{table}"))
        since = runs_since_reconciliation(conn, source, run_id)
    if emptied:  # the row counters do not see a TRUNCATE
        table_counts.add(counts.tables, {f"stg.{table}": (0, 0, emptied)})
    every = ctx.settings.key_reconciliation_every_runs
    if since is not None and since < every - 1:
        counts.meanings[RUNS_TO_GO] = every - 1 - since
        return
    counts.meanings[KEY_SET_READ] = copy_key_set(ctx.source, ctx.warehouse, source, run_id, ctx.same_database)


def copy_key_set(source_engine: Engine, warehouse: Engine, source: SourceObject, run_id: int, same: bool) -> int:
    """Stage every key ``source`` holds now into its key-set table for ``run_id``; return how many."""
    target = sa.table(key_table(source), sa.column("run_id"), *(sa.column(k) for k in source.business_key),
                      schema="stg")  # fmt: skip
    leading = (sa.literal(run_id, sa.BigInteger),)
    try:
        query = extract.key_set_query(source)
        return extract.copy_rows(source_engine, warehouse, query, target, leading, same_database=same)
    except Exception as exc:  # COPY raises the driver's own error, not SQLAlchemy's
        if not validation.value_does_not_fit(exc):
            raise
    # a key too long for its column is in no dimension either: leave it out (its row is quarantined by the pull)
    limits = [limit for limit in validation.staging_limits(warehouse, source) if limit.column in source.business_key]
    query = extract.key_set_query(source, validation.fitting(limits))
    return extract.copy_rows(source_engine, warehouse, query, target, leading, same_database=same)


def close_vanished(
    conn: Connection,
    settings: Settings,
    source: SourceObject,
    run_id: int,
    as_of: datetime,
    force_deletes: bool,
    meanings: dict[str, int],
) -> None:
    """In the dimension load's transaction, after its procedure: when this run's pull staged the key set of
    ``source``, close the live keys it lacks (circuit breaker: ``max_delete_share`` from
    ``max_delete_share_min_rows`` live rows, none with ``force_deletes``) and add what that wrote to
    ``meanings``."""
    from flows.pipeline import pull_step  # the pipeline imports this module

    if not reconciled(source):
        return
    staged = conn.execute(
        sa.text("SELECT count(*) FROM ctl.run_step_meaning WHERE run_id = :r AND step_name = :s AND meaning = :m"),
        {"r": run_id, "s": pull_step(source), "m": KEY_SET_READ},
    ).scalar_one()
    if not staged:
        return
    reported = database.call_procedure(conn, PROCEDURE, {
        "p_dimension": dimension_of(source),
        "p_key_columns": ",".join(source.dimension_key or source.business_key),
        "p_present": f"stg.{key_table(source)}",
        "p_present_columns": ",".join(source.business_key),
        "p_present_run_id": run_id,
        "p_max_delete_share": Decimal(1) if force_deletes else Decimal(str(settings.max_delete_share)),
        "p_min_rows": settings.max_delete_share_min_rows,
        "p_as_of": as_of,
        "p_run_id": run_id,
    })  # fmt: skip
    closed, deleted = reported.get("rows_closed", 0), reported.get("rows_deleted", 0)
    meanings["versions_closed"] = meanings.get("versions_closed", 0) + closed
    meanings["deleted_at_source"] = meanings.get("deleted_at_source", 0) + deleted
    meanings[VANISHED] = deleted
    if deleted:
        loaded_rows.forget_deleted(conn, source, run_id)
