"""Rows already loaded: what a cursor pull re-reads unchanged is dropped before it reaches a dimension.

A cursor pull re-reads its look-back window every run, because rows committed late hide there. Most of
what it re-reads is rows a previous run loaded and nobody changed since; each would cost the merge a probe
of the dimension's current-row index. ``ctl.loaded_row`` remembers, per cursor source, a hash of the
business key and of the whole staged row (every column but ``run_id``) of each row whose load committed
and whose cursor lies inside the next pull's window. After staging, the pull deletes its rows found
there: a hash join of two sets the size of a look-back window, instead of that many index probes.

Why this loses nothing:
- A row is remembered only after its run's dimension load committed (``mark_loaded``, in that load's
  transaction, sets ``ctl.run_source_load.loaded_at``); a pull folds the staged rows of such a run into the
  set before it empties staging, and leaves the set alone otherwise (a run that died before its load).
- One entry per key, replaced when a later loaded run staged the key again, so an entry is always what
  the dimension's current version was loaded from. A key staged twice by one run (versions the merge
  chose between) is forgotten rather than guessed.
- The hash covers every staged column, the cursor and the row's time zone included: any change at the
  source, or a move of the key to the other tracker, makes the row differ and load as before.
- A full pull (first run, ``--full-refresh``) compares nothing and reloads every row.
A new version of a cursor source's loader should clear its rows here (or be followed by a full refresh):
rows dropped as unchanged are not transformed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from flows import dialects
from flows.extract import ExtractWindow
from flows.sources import SourceObject

FORGET = "pmw_forget"  # the temporary table of the keys forget_deleted forgets


def mark_loaded(conn: Connection, source: SourceObject, run_id: int) -> None:
    """Record, in the dimension load's own transaction, that this run's staged rows of ``source`` loaded."""
    if source.strategy != "cursor":  # only cursor pulls are compared with what was loaded
        return
    conn.execute(
        sa.text("UPDATE ctl.run_source_load SET loaded_at = :now WHERE run_id = :r AND source_object = :s"),
        {"now": datetime.now(UTC), "r": run_id, "s": source.name},
    )


def remember_loaded(warehouse: Engine, source: SourceObject, windows: Sequence[ExtractWindow]) -> None:
    """Before a pull empties staging: fold the staged rows of the last run, if their load committed, into
    ctl.loaded_row, and keep only the entries this pull's windows can read again."""
    if source.strategy != "cursor":
        return
    with warehouse.begin() as conn:
        dialect = dialects.of(conn)
        params, in_window = _window_predicate(source, windows, "s", source.cursor_column or "", "s.")
        trim_params, remembered_in_window = _window_predicate(source, windows, "l", "cursor_value", "")
        conn.execute(
            sa.text(f"DELETE FROM ctl.loaded_row WHERE source_object = :source AND NOT ({remembered_in_window})"),
            {**trim_params, "source": source.name},
        )
        # staging holds the rows of one run: fold them in only if that run's load committed
        staged_run = conn.execute(sa.select(_staging(source).c.run_id).limit(1)).scalar()
        if staged_run is None or not _load_committed(conn, source, staged_run):
            return
        key_hash, row_hash = _hashes(source, dialect)
        staged = f"stg.{source.staging_table} AS s"
        remembered = conn.execute(
            sa.text("SELECT COUNT(*) FROM ctl.loaded_row WHERE source_object = :source"), {"source": source.name}
        ).scalar_one()
        if remembered:  # entries of keys the loaded run staged again give way to its rows (none after a first load)
            conn.execute(
                sa.text(
                    "DELETE FROM ctl.loaded_row WHERE source_object = :source AND key_hash IN "
                    f"(SELECT {key_hash} FROM {staged})"
                ),
                {"source": source.name},
            )
        partition = f"s.{source.partition_column}" if source.partition_column else "''"
        conn.execute(
            sa.text(
                "INSERT INTO ctl.loaded_row (source_object, key_hash, source_partition, row_hash, cursor_value) "
                "SELECT :source, key_hash, MIN(source_partition), MIN(row_hash), MIN(cursor_value) FROM ("
                f"SELECT {key_hash} AS key_hash, {partition} AS source_partition, {row_hash} AS row_hash, "
                f"s.{source.cursor_column} AS cursor_value FROM {staged} WHERE {in_window}"
                ") AS r GROUP BY key_hash HAVING COUNT(*) = 1"
            ),
            {**params, "source": source.name},
        )
        refresh = dialect.refresh_statistics_sql("ctl.loaded_row")  # its rows were all replaced
        if refresh is not None:
            conn.execute(sa.text(refresh))


def drop_unchanged(
    warehouse: Engine, source: SourceObject, windows: Sequence[ExtractWindow], run_id: int
) -> dict[str, int | None]:
    """Delete this run's staged rows of ``source`` that ctl.loaded_row holds unchanged, and record how many
    per partition in ctl.run_source_load (None: nothing compared, as when a window reads everything)."""
    if source.strategy != "cursor":
        return {}
    with warehouse.begin() as conn:
        counts: dict[str, int | None] = {window.partition: None for window in windows}
        if all(window.window_from is not None for window in windows):
            dropped = _delete_unchanged(conn, source, run_id)
            counts = {partition: dropped.get(partition, 0) for partition in counts}
        keys = {"r": run_id, "s": source.name}
        conn.execute(sa.text("DELETE FROM ctl.run_source_load WHERE run_id = :r AND source_object = :s"), keys)
        conn.execute(
            sa.text(
                "INSERT INTO ctl.run_source_load (run_id, source_object, source_partition, rows_unchanged) "
                "VALUES (:r, :s, :p, :n)"
            ),
            [{**keys, "p": partition, "n": count} for partition, count in counts.items()],
        )
    return counts


def forget_deleted(conn: Connection, source: SourceObject, run_id: int) -> None:
    """Forget the entries of the keys this run closed as deleted at the source (flows/key_sets.py): their rows
    left the source without a change, so if one comes back as it was, within the look-back, it must load
    again (to a new live version), not be dropped as unchanged. The keys are listed in a table of the staging
    table's own column types, so their hash is the one the pull computes."""
    if source.strategy != "cursor":
        return
    dialect = dialects.of(conn)
    dimension = source.procedure.removeprefix("warehouse.load_dim_")
    names = source.dimension_key or source.business_key
    listed = ", ".join(source.business_key)
    picked = ", ".join(f"d.{name}" for name in names)
    # '1' is true in both dialects (T-SQL takes no bare bit column as a condition)
    closed = (
        f"SELECT {picked} FROM dim.{dimension} AS d WHERE d.run_id = :r AND d.is_current = '1' AND d.is_deleted = '1'"
    )
    conn.execute(sa.text(dialect.drop_temp_table_sql(FORGET)))
    conn.execute(sa.text(dialect.create_temp_table_sql(FORGET, listed, f"FROM stg.{source.staging_table}", empty=True)))
    forget = dialect.temp_table(FORGET)
    conn.execute(sa.text(f"INSERT INTO {forget} ({listed}) {closed}"), {"r": run_id})
    conn.execute(
        sa.text(f"DELETE FROM ctl.loaded_row WHERE source_object = :source AND key_hash IN "
                f"(SELECT {dialect.row_hash_sql(source.business_key)} FROM {forget} AS s)"),
        {"source": source.name},
    )  # fmt: skip
    conn.execute(sa.text(dialect.drop_temp_table_sql(FORGET)))


def _delete_unchanged(conn: Connection, source: SourceObject, run_id: int) -> dict[str, int]:
    dialect = dialects.of(conn)
    key_hash, row_hash = _hashes(source, dialect)
    found = (
        f"s.run_id = :run_id AND EXISTS (SELECT 1 FROM ctl.loaded_row AS l WHERE l.source_object = :source "
        f"AND l.key_hash = {key_hash} AND l.row_hash = {row_hash})"
    )
    statement = dialect.delete_counted_sql(f"stg.{source.staging_table}", "s", found, source.partition_column)
    result = conn.execute(sa.text(statement), {"run_id": run_id, "source": source.name})
    return {partition: int(count) for partition, count in result}


def _load_committed(conn: Connection, source: SourceObject, run_id: int) -> bool:
    return bool(
        conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM ctl.run_source_load "
                "WHERE run_id = :r AND source_object = :source AND loaded_at IS NOT NULL"
            ),
            {"r": run_id, "source": source.name},
        ).scalar_one()
    )


def _window_predicate(
    source: SourceObject, windows: Sequence[ExtractWindow], alias: str, cursor: str, prefix: str
) -> tuple[dict[str, object], str]:
    """SQL true for a row a pull of ``windows`` reads (a NULL cursor is read every time); FALSE for a
    window that reads everything, whose rows are never compared."""
    params: dict[str, object] = {}
    parts = []
    for number, window in enumerate(windows):
        if window.window_from is None:
            continue
        params[f"{alias}_from_{number}"] = window.window_from
        test = f"({prefix}{cursor} >= :{alias}_from_{number} OR {prefix}{cursor} IS NULL)"
        if source.partition_column:
            params[f"{alias}_partition_{number}"] = window.partition
            column = f"{prefix}{source.partition_column}" if prefix else "source_partition"
            test = f"({column} = :{alias}_partition_{number} AND {test})"
        parts.append(test)
    return params, " OR ".join(parts) if parts else "1 = 0"


def _hashes(source: SourceObject, dialect: dialects.Dialect) -> tuple[str, str]:
    """SQL hashes of staged row ``s``: of its business key, and of the whole row (time zone included)."""
    return dialect.row_hash_sql(source.business_key), dialect.row_hash_sql(("time_zone", *source.columns))


def _staging(source: SourceObject) -> sa.TableClause:
    return sa.table(source.staging_table, sa.column("run_id"), schema="stg")
