"""Extraction: plan each source's window from its watermark, and pull it into staging.

A cursor source reads ``[watermark - look-back, upper]`` per partition, the upper bound being the
run's as-of instant in the source's own time semantics (fixed at run start, so rows stamped later
wait for the next run). Re-reading the look-back is harmless: the dimension merge drops rows whose
hash is unchanged. A full-compare source reads the whole table. The watermark is *not* moved here:
the run log moves it only after the rows are committed to the dimensions.

When source and warehouse are one database the pull is one ``INSERT ... SELECT``; otherwise rows
stream in chunks from the source and go in through the warehouse's bulk path (COPY on PostgreSQL,
``fast_executemany`` on SQL Server), never all in memory and never row by row statements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows import dialects
from flows.errors import SourceError, SourceUnavailable
from flows.redaction import redact_url
from flows.sources import Partition, SourceObject

CHUNK_ROWS = 50_000
UTC_ZONE = "UTC"


@dataclass(frozen=True)
class ExtractWindow:
    """What one pull of one source partition reads; recorded in ctl.run_source."""

    source: str
    partition: str
    strategy: str
    window_from: datetime | None  # inclusive, naive in the partition's time semantics; None = all
    window_to: datetime | None  # inclusive upper bound, fixed at run start; None = all (full compare)
    watermark_before: datetime | None
    time_zone: str  # zone of the staged rows' timestamps


def source_now(as_of: datetime, partition: Partition, source_timezone: str) -> datetime:
    """``as_of`` (aware) as the offset-less timestamp the source would stamp at that instant."""
    zone = UTC if partition.time_semantics == "utc" else ZoneInfo(source_timezone)
    return as_of.astimezone(zone).replace(tzinfo=None)


def plan_windows(
    source: SourceObject,
    watermarks: dict[tuple[str, str], datetime | None],
    *,
    as_of: datetime,
    lookback: timedelta,
    source_timezone: str,
    warehouse_dialect: str,
    full_refresh: bool,
) -> list[ExtractWindow]:
    """The windows of ``source`` for a run at ``as_of`` (one per watermark partition), each with the zone of
    its rows' timestamps as the warehouse's SQL names it (the loaders read it in ``AT TIME ZONE``)."""
    windows, dialect = [], dialects.named(warehouse_dialect)
    for partition in source.watermark_partitions():
        iana = UTC_ZONE if partition.time_semantics == "utc" else source_timezone
        zone = dialect.zone_name(iana)
        before = watermarks.get((source.name, partition.value))
        if source.strategy == "full_compare":
            windows.append(ExtractWindow(source.name, partition.value, source.strategy, None, None, None, zone))
            continue
        lower = None if full_refresh or before is None else before - lookback
        upper = source_now(as_of, partition, source_timezone)
        windows.append(ExtractWindow(source.name, partition.value, source.strategy, lower, upper, before, zone))
    if not full_refresh:  # a full refresh reads from the beginning: the repair for a watermark in the future
        check_windows(windows)
    return windows


class WindowOutOfOrder(SourceError):
    """A cursor window starts after it ends, or its watermark is later than the source's clock at the as-of."""

    def __init__(self, window: ExtractWindow) -> None:
        source = window.source + (f" ({window.partition})" if window.partition else "")
        super().__init__(
            f"the watermark of {source} is {window.watermark_before}, later than the source's clock at this run's "
            f"as-of ({window.window_to}, {window.time_zone}): its window [{window.window_from}, {window.window_to}] "
            "would miss every row changed before the watermark. Nothing was read and no watermark moved. If the "
            "as-of is wrong, run again with the right one (`pmw run --as-of ...`); if the watermark is wrong (a "
            "clock that ran ahead, a restored source), re-read the source from the beginning with `pmw run "
            f"--full-refresh --source {window.source}` (flow parameters full_refresh and sources), which sets the "
            "watermark from the rows it reads."
        )


def check_windows(windows: list[ExtractWindow]) -> None:
    """Refuse a cursor window that starts after it ends, or whose watermark is later than its upper bound."""
    for window in windows:
        if window.window_to is None:
            continue  # a full compare reads everything
        later = window.watermark_before is not None and window.watermark_before > window.window_to
        if later or (window.window_from is not None and window.window_from > window.window_to):
            raise WindowOutOfOrder(window)


def _source_table(source: SourceObject) -> sa.TableClause:
    return sa.table(source.source_table, *(sa.column(name) for name in source.columns), schema=source.source_schema)


def _staging_table(source: SourceObject) -> sa.TableClause:
    names = ("run_id", "time_zone", *source.columns)
    return sa.table(source.staging_table, *(sa.column(name) for name in names), schema="stg")


Keep = Callable[[sa.TableClause], sa.ColumnElement[bool]]


def extract_query(source: SourceObject, window: ExtractWindow, keep: Keep | None = None) -> sa.Select:
    """SELECT of the source rows in ``window`` (dialect-neutral: quoting is the engine's). With ``keep`` (a
    condition over the source table), only the rows that meet it: flows/validation.py leaves out the rows
    whose values do not fit their staging columns, or reads only those."""
    table = _source_table(source)
    query = sa.select(*table.c)
    if keep is not None:
        query = query.where(keep(table))
    if source.partition_column:
        query = query.where(table.c[source.partition_column] == window.partition)
    if source.strategy == "cursor" and source.cursor_column:
        cursor = table.c[source.cursor_column]
        in_window = cursor <= window.window_to
        if window.window_from is not None:
            in_window = sa.and_(cursor >= window.window_from, in_window)
        # NULL cursor: "include" re-reads such rows every run (the merge drops unchanged ones);
        # "reject" leaves them out (they never load, which a quality check should report).
        query = query.where(sa.or_(in_window, cursor.is_(None)) if source.null_cursor == "include" else in_window)
    return query


def key_set_query(source: SourceObject, keep: Keep | None = None) -> sa.Select:
    """SELECT of every business key ``source`` holds now, whatever its cursor or partition (the key set that
    flows/key_sets.py compares with the dimension's live keys); with ``keep``, only the rows that meet it."""
    table = _source_table(source)
    keys = [table.c[name] for name in source.business_key]
    # a key with a NULL part is in no dimension (such a row is quarantined): nothing to compare it with
    query = sa.select(*keys).where(*(key.is_not(None) for key in keys))
    return query if keep is None else query.where(keep(table))


def clear_staging(warehouse: Engine, source: SourceObject) -> int:
    """Empty the staging table (it holds only the current run's delta); return how many rows it held (the
    database's row counters do not see a TRUNCATE)."""
    with warehouse.begin() as conn:
        held = int(conn.execute(sa.text(f"SELECT count(*) FROM stg.{source.staging_table}")).scalar_one())
        conn.execute(sa.text(f"TRUNCATE TABLE stg.{source.staging_table}"))
    return held


def pull(
    source_engine: Engine,
    warehouse: Engine,
    source: SourceObject,
    window: ExtractWindow,
    run_id: int,
    *,
    same_database: bool,
    keep: Keep | None = None,
) -> tuple[int, datetime | None]:
    """Stage ``window`` of ``source`` for ``run_id`` (only the rows that meet ``keep``, when given); return
    (rows read, newest cursor value read)."""
    query = extract_query(source, window, keep)
    leading = (sa.literal(run_id, sa.BigInteger), sa.literal(window.time_zone))
    rows = copy_rows(source_engine, warehouse, query, _staging_table(source), leading, same_database=same_database)
    return rows, _newest_cursor(warehouse, source, window, run_id)


def copy_rows(
    source_engine: Engine,
    warehouse: Engine,
    query: sa.Select,
    target: sa.TableClause,
    leading: tuple[sa.BindParameter[Any], ...],
    *,
    same_database: bool,
) -> int:
    """Put the rows of ``query`` (a SELECT over one source table), each preceded by the ``leading`` values, into
    ``target`` (a table of schema stg, its columns in that order); return how many. Same database: one
    ``INSERT ... SELECT``; otherwise streamed in chunks through the warehouse driver's bulk path."""
    if same_database:
        labelled = sa.select(*leading, *query.selected_columns)
        if query.whereclause is not None:
            labelled = labelled.where(query.whereclause)
        statement = sa.insert(target).from_select(list(target.c.keys()), labelled)
        with warehouse.begin() as conn:
            return int(conn.execution_options(preserve_rowcount=True).execute(statement).rowcount)
    return _stream(source_engine, warehouse, query, target, tuple(value.value for value in leading))


def _newest_cursor(warehouse: Engine, source: SourceObject, window: ExtractWindow, run_id: int) -> datetime | None:
    if source.strategy != "cursor" or not source.cursor_column:
        return None
    staging = _staging_table(source)
    query = sa.select(sa.func.max(staging.c[source.cursor_column])).where(staging.c.run_id == run_id)
    if source.partition_column:
        query = query.where(staging.c[source.partition_column] == window.partition)
    with warehouse.connect() as conn:
        return conn.execute(query).scalar()


def _stream(
    source_engine: Engine, warehouse: Engine, query: sa.Select, staging: sa.TableClause, leading: tuple[object, ...]
) -> int:
    """Copy the query's rows into staging in chunks through the warehouse driver's bulk path."""
    columns = list(staging.c.keys())
    total = 0
    bulk = dialects.of(warehouse)
    with source_connection(source_engine) as source_conn, warehouse.begin() as target:
        result = source_conn.execution_options(stream_results=True, max_row_buffer=CHUNK_ROWS).execute(query)
        for chunk in result.partitions(CHUNK_ROWS):
            rows = [(*leading, *row) for row in chunk]
            bulk.bulk_insert(target, f"stg.{staging.name}", columns, rows)
            total += len(rows)
    return total


@contextmanager
def source_connection(source_engine: Engine) -> Iterator[sa.Connection]:
    """A connection to the source; failing to get one is SourceUnavailable (the URL's password hidden)."""
    try:
        conn = source_engine.connect()
    except sa.exc.OperationalError as exc:
        raise SourceUnavailable(redact_url(source_engine.url), exc.orig or exc) from exc
    with conn:
        yield conn
