"""Bad input: the source's shape is checked before a pull, and staged rows that cannot be loaded are
moved to ``ctl.quarantine`` (reason, run id, the row as JSON) before any procedure sees them.

Text longer than its staging (and warehouse) column cannot be staged at all: when a pull fails on one,
the window's rows with such text are read from the source and recorded, and the window is pulled again
without them (the check costs a read of the window, so it runs only then).

Rules, set-based over the staging table (one scan counts every rule; rows move only when some match):

* a NULL business-key column;
* a business key repeated in one extract of a full-compare source (which row is the truth is unknown;
  a cursor source's repeats are versions, and the merge keeps the latest);
* a date or instant outside 1900-2199 (year 1 and 9999 are sentinels, not dates);
* an instant the source declares as past (``past_instants``) later than the source's own clock at the
  run's as-of, plus an hour;
* a declared pair out of order (``ordered_instants``: closed before created, say).

The run goes on without the quarantined rows unless they exceed ``PMW_QUARANTINE_MAX_SHARE`` of the
extract: then the pull fails (the quarantined rows stay recorded for inspection, nothing is loaded, no
watermark moves). A quarantined cursor row is behind its watermark once the run succeeds; when the source
fixes it, its change time moves and the next run reads it again.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows import extract
from flows.errors import SourceError
from flows.extract import ExtractWindow
from flows.sources import SourceObject

EARLIEST, LATEST = "1900-01-01", "2200-01-01"
CLOCK_SLACK = timedelta(hours=1)
DATE_TYPES = ("date", "timestamp without time zone", "timestamp with time zone", "datetime", "datetime2",
              "datetimeoffset", "smalldatetime")  # fmt: skip


class SourceSchemaDrift(SourceError):
    """A declared source column is missing from the source object."""


class QuarantineThresholdExceeded(SourceError):
    """Too many of an extract's rows were rejected to trust the rest."""


def check_source_columns(source_engine: Engine, source: SourceObject) -> None:
    """Every column the extraction reads exists in the source object, or SourceSchemaDrift names the missing.

    The usual case costs one empty SELECT of the declared columns; the catalog is read only when it fails.
    """
    with extract.source_connection(source_engine) as conn:  # unreachable: SourceUnavailable
        try:
            table = sa.table(source.source_table, *(sa.column(c) for c in source.columns), schema=source.source_schema)
            conn.execute(sa.select(*table.c).where(sa.false()))
            return
        except sa.exc.DBAPIError:
            conn.rollback()
        present = {
            name.lower()
            for name in conn.execute(
                sa.text("SELECT column_name FROM information_schema.columns "
                        "WHERE table_schema = :schema AND table_name = :table"),
                {"schema": source.source_schema, "table": source.source_table},
            ).scalars()
        }  # fmt: skip
    qualified = f"{source.source_schema}.{source.source_table}"
    if not present:
        raise SourceSchemaDrift(
            f"the source object {qualified} does not exist (or this login cannot see it); the extraction of "
            f"{source.name!r} reads it. Restore it, grant access, or map its new name in flows/sources.py; "
            "nothing was staged or loaded."
        )
    missing = [name for name in source.columns if name.lower() not in present]
    if missing:
        raise SourceSchemaDrift(
            f"the source object {qualified} has no column {', '.join(missing)} (removed or renamed?); the "
            f"extraction of {source.name!r} reads {', '.join(source.columns)}. Restore the column or map its new "
            "name in flows/sources.py (and the staging table); nothing was staged or loaded."
        )


def text_limits(warehouse: Engine, source: SourceObject) -> dict[str, int]:
    """Column -> the length of its staging column, for the bounded text columns of ``source``."""
    with warehouse.connect() as conn:
        if conn.dialect.name == "postgresql":  # pg_catalog: information_schema costs milliseconds per call
            query = ("SELECT a.attname, a.atttypmod - 4 FROM pg_attribute AS a WHERE a.attrelid = "
                     "CAST(:q AS regclass) AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypmod > 4 "
                     "AND a.atttypid IN ('varchar'::regtype, 'bpchar'::regtype)")  # fmt: skip
        else:
            query = ("SELECT column_name, character_maximum_length FROM information_schema.columns WHERE "
                     "table_schema + '.' + table_name = :q AND character_maximum_length > 0")  # fmt: skip
        found = conn.execute(sa.text(query), {"q": f"stg.{source.staging_table}"}).all()
    return {name: int(length) for name, length in found if name in source.columns}


def is_text_too_long(exc: BaseException) -> bool:
    """The database refused a value longer than its column (SQLSTATE 22001, both drivers)."""
    orig = getattr(exc, "orig", exc)
    state = getattr(orig, "sqlstate", None) or (str(orig.args[0]) if getattr(orig, "args", None) else "")
    return state == "22001"


def quarantine_overlong(
    source_engine: Engine,
    warehouse: Engine,
    source: SourceObject,
    window: ExtractWindow,
    limits: dict[str, int],
    run_id: int,
) -> int:
    """Record the rows of ``window`` whose text is longer than its staging column (the pull leaves them out)."""
    if not limits:
        return 0
    query = extract.extract_query(source, window, limits, overlong=True)
    with extract.source_connection(source_engine) as conn:
        rows = conn.execute(query).mappings().all()  # the offending rows only: few
    if not rows:
        return 0
    records = []
    for row in rows:
        too_long = [f"{c} longer than {n} characters ({len(row[c])})" for c, n in limits.items()
                    if row[c] is not None and len(row[c]) > n]  # fmt: skip
        records.append({
            "r": run_id, "s": source.name, "k": "|".join("NULL" if row[k] is None else str(row[k])
                                                         for k in source.business_key),
            "reason": "; ".join(too_long)[:200], "row": json.dumps(dict(row), default=str, ensure_ascii=False),
        })  # fmt: skip
    insert = sa.text("INSERT INTO ctl.quarantine (run_id, source_object, business_key, reason, row_data, "
                     "quarantined_at) VALUES (:r, :s, :k, :reason, :row, CURRENT_TIMESTAMP)")  # fmt: skip
    with warehouse.begin() as conn:
        conn.execute(insert, records)
    return len(records)


def _rules(source: SourceObject, date_columns: list[str], dialect: str) -> list[tuple[str, str]]:
    """(reason, SQL predicate over staging alias s) for this source."""
    rules = [("business key is NULL", " OR ".join(f"s.{k} IS NULL" for k in source.business_key))]
    if source.strategy == "full_compare":
        if len(source.business_key) == 1:  # a hashed list of the repeated keys
            key = source.business_key[0]
            repeated = (f"s.{key} IN (SELECT {key} FROM stg.{source.staging_table} WHERE run_id = :run_id "
                        f"GROUP BY {key} HAVING count(*) > 1)")  # fmt: skip
        else:  # the maps: a few dozen rows, counted per row
            keys = " AND ".join(f"o.{k} = s.{k}" for k in source.business_key)
            repeated = (
                f"(SELECT count(*) FROM stg.{source.staging_table} AS o WHERE o.run_id = s.run_id AND {keys}) > 1"
            )
        rules.append(("business key repeated in one extract", repeated))
    for column in date_columns:
        rules.append((f"{column} outside {EARLIEST[:4]}-{int(LATEST[:4]) - 1}",
                      f"(s.{column} < '{EARLIEST}' OR s.{column} >= '{LATEST}')"))  # fmt: skip
    for column in source.past_instants:
        rules.append((f"{column} in the future",
                      f"s.{column} > CASE WHEN s.time_zone = 'UTC' THEN :utc_limit ELSE :local_limit END"))  # fmt: skip
    for earlier, later in source.ordered_instants:
        rules.append((f"{later} before {earlier}", f"s.{later} < s.{earlier}"))
    return rules


def keep_quarantined_keys(conn: sa.Connection, source: SourceObject, run_id: int) -> bool:
    """List, for warehouse.merge_scd2 in this transaction, the keys of ``source`` quarantined by this run.

    A full compare reads a key missing from the extract as a hard delete; a quarantined row's key is still
    at the source, so its current version must stay. Returns whether a list was made (drop it after the
    call on SQL Server: ``drop_kept_keys``).
    """
    if source.strategy != "full_compare":
        return False
    found = {"r": run_id, "s": source.name}
    listed = "FROM ctl.quarantine WHERE run_id = :r AND source_object = :s AND business_key IS NOT NULL"
    if not conn.execute(sa.text(f"SELECT count(*) {listed}"), found).scalar_one():
        return False
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"CREATE TEMP TABLE pmw_kept_keys ON COMMIT DROP AS SELECT DISTINCT "
                             f"business_key AS key_text {listed}"), found)  # fmt: skip
    else:
        conn.execute(sa.text(f"SELECT DISTINCT business_key AS key_text INTO #pmw_kept_keys {listed}"), found)
    return True


def drop_kept_keys(conn: sa.Connection) -> None:
    if conn.dialect.name != "postgresql":  # PostgreSQL drops it at commit
        conn.exec_driver_sql("DROP TABLE IF EXISTS #pmw_kept_keys")


def _json_of_row(dialect: str) -> str:
    if dialect == "postgresql":
        return "CAST(row_to_json(s) AS text)"
    return "(SELECT s.* FOR JSON PATH, WITHOUT_ARRAY_WRAPPER)"


def _key_text(source: SourceObject, dialect: str) -> str:
    parts = [f"COALESCE(CAST(s.{k} AS {'text' if dialect == 'postgresql' else 'NVARCHAR(200)'}), 'NULL')"
             for k in source.business_key]  # fmt: skip
    return (" || '|' || " if dialect == "postgresql" else " + N'|' + ").join(parts)


def quarantine_staged(
    warehouse: Engine,
    source: SourceObject,
    run_id: int,
    as_of: datetime,
    source_timezone: str,
    max_share: float,
    rejected_before: int = 0,
) -> int:
    """Move this run's staged rows of ``source`` that break a rule to ctl.quarantine; return how many moved
    (with ``rejected_before``, the rows already quarantined before staging, for the threshold)."""
    limits = {
        "utc_limit": as_of.astimezone(ZoneInfo("UTC")).replace(tzinfo=None) + CLOCK_SLACK,
        "local_limit": as_of.astimezone(ZoneInfo(source_timezone)).replace(tzinfo=None) + CLOCK_SLACK,
    }
    with warehouse.begin() as conn:
        dialect = conn.dialect.name
        date_columns = [
            name for name, data_type in conn.execute(
                sa.text("SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_schema = 'stg' AND table_name = :t ORDER BY ordinal_position"),
                {"t": source.staging_table},
            ) if data_type.lower() in DATE_TYPES and name in source.columns
        ]  # fmt: skip
        rules = _rules(source, date_columns, dialect)
        staged = f"stg.{source.staging_table} AS s WHERE s.run_id = :run_id"
        params = {"run_id": run_id, **limits}
        counts = ", ".join(f"SUM(CASE WHEN {predicate} THEN 1 ELSE 0 END)" for _, predicate in rules)
        found = conn.execute(sa.text(f"SELECT count(*), {counts} FROM {staged}"), params).one()
        total, matches = int(found[0]), [int(n or 0) for n in found[1:]]
        if not any(matches):
            _check_share(source, run_id, rejected_before, total + rejected_before, max_share)
            return rejected_before
        for (reason, predicate), matched in zip(rules, matches, strict=True):
            if matched:
                conn.execute(sa.text(
                    "INSERT INTO ctl.quarantine (run_id, source_object, business_key, reason, row_data, "
                    f"quarantined_at) SELECT :run_id, :source, {_key_text(source, dialect)}, :reason, "
                    f"{_json_of_row(dialect)}, CURRENT_TIMESTAMP FROM {staged} AND ({predicate})"
                ), {**params, "source": source.name, "reason": reason})  # fmt: skip
        any_rule = " OR ".join(f"({predicate})" for _, predicate in rules)
        moved = conn.execute(
            sa.text(f"DELETE FROM stg.{source.staging_table} AS s WHERE s.run_id = :run_id AND ({any_rule})")
            if dialect == "postgresql" else
            sa.text(f"DELETE s FROM stg.{source.staging_table} AS s WHERE s.run_id = :run_id AND ({any_rule})"),
            params,
        ).rowcount  # fmt: skip
    moved = int(moved) + rejected_before
    _check_share(source, run_id, moved, total + rejected_before, max_share)
    return moved


def _check_share(source: SourceObject, run_id: int, rejected: int, total: int, max_share: float) -> None:
    if rejected > max_share * total:
        raise QuarantineThresholdExceeded(
            f"{rejected} of the {total} rows read from {source.source_schema}.{source.source_table} were rejected "
            f"(see ctl.quarantine for run {run_id}), more than the limit of {max_share:.0%}; nothing of this run "
            "was loaded. Fix the source rows, or raise PMW_QUARANTINE_MAX_SHARE, and run again."
        )
