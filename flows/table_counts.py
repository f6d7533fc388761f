"""Rows physically inserted, updated and deleted per table, as the database itself counts them.

PostgreSQL counts every row a transaction inserts, updates and deletes per table
(``pg_stat_xact_user_tables``), procedures and ``ON CONFLICT`` included, at no cost to the writes. A
step's figures are read from there, never from what its code believes it wrote:

* a transaction of its own (a pull's statements, a dimension load) is read as it begins and just before it
  commits, through engine listeners that the run log installs for the step (``counting_commits``): the
  counters are per backend and hold earlier transactions' counts until they are flushed (when the session
  is idle, never inside a transaction), so only the difference is this transaction's;
* the fact phase, one transaction for every fact and bridge procedure, is read before and after each
  procedure (``snapshot``), so each step gets its own share.

Two things the counters do not see are added by the callers: ``TRUNCATE`` (it resets the counters of
the table it empties; ``extract.clear_staging`` counts the rows first) and work rolled back (a
transaction that does not commit is not read). Counts of a savepoint rolled back inside a transaction
that commits are included by PostgreSQL; no step here commits after such a rollback.

SQL Server keeps no per-transaction row counters (``sys.dm_db_index_operational_stats`` is cumulative and
database-wide); there the run log records only the counts the procedures report.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from flows import dialects

Counts = dict[str, tuple[int, int, int]]  # "schema.table" -> (inserted, updated, deleted)

# The run log's own records of a run are not the data the run writes.
RUN_LOG_TABLES = frozenset({
    "ctl.run", "ctl.run_step", "ctl.run_step_table", "ctl.run_step_meaning", "ctl.run_source",
    "ctl.run_source_load", "ctl.step_state", "ctl.publication",
})  # fmt: skip
_QUERY = (
    "SELECT schemaname || '.' || relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables "
    "WHERE schemaname IN ('stg', 'dim', 'fact', 'brg', 'ctl') AND n_tup_ins + n_tup_upd + n_tup_del > 0"
)
SKIP = "pmw_counted_by_caller"  # a connection's info key: its transaction is counted by whoever holds it
_AT_BEGIN = "pmw_counts_at_begin"


def _read(driver_connection: Any) -> Counts:
    cursor = driver_connection.cursor()
    try:
        cursor.execute(_QUERY)
        return {name: (int(i), int(u), int(d)) for name, i, u, d in cursor.fetchall() if name not in RUN_LOG_TABLES}
    finally:
        cursor.close()


def snapshot(conn: sa.Connection) -> Counts:
    """This transaction's counts so far (PostgreSQL; empty elsewhere)."""
    if not dialects.of(conn).counts_rows_per_transaction:
        return {}
    return _read(conn.connection.driver_connection)


def difference(after: Counts, before: Counts) -> Counts:
    """``after - before``, per table, keeping only tables with some change."""
    found: Counts = {}
    for name, (i, u, d) in after.items():
        bi, bu, bd = before.get(name, (0, 0, 0))
        if (i - bi, u - bu, d - bd) != (0, 0, 0):
            found[name] = (i - bi, u - bu, d - bd)
    return found


def add(total: Counts, more: Counts) -> None:
    for name, (i, u, d) in more.items():
        ti, tu, td = total.get(name, (0, 0, 0))
        total[name] = (ti + i, tu + u, td + d)


@contextmanager
def counting_commits(engine: sa.Engine, total: Counts) -> Iterator[None]:
    """While inside: add the counts of every transaction that commits on ``engine`` to ``total``."""
    if not dialects.of(engine).counts_rows_per_transaction:
        yield
        return

    def at_begin(conn: sa.Connection) -> None:
        if not conn.info.get(SKIP):  # the read opens the database transaction: no flush can come between
            conn.info[_AT_BEGIN] = _read(conn.connection.driver_connection)

    def before_commit(conn: sa.Connection) -> None:
        before = conn.info.pop(_AT_BEGIN, None)
        if before is not None:
            add(total, difference(_read(conn.connection.driver_connection), before))

    def at_rollback(conn: sa.Connection) -> None:
        if not conn.invalidated:  # a lost connection has no info to clean (and asking would raise)
            conn.info.pop(_AT_BEGIN, None)

    listeners = (("begin", at_begin), ("commit", before_commit), ("rollback", at_rollback))
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        yield
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)
