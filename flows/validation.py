"""Bad input: staged rows that cannot be loaded are moved to ``ctl.quarantine`` (reason, run id, the row as
JSON) before any procedure sees them. (The source's shape is checked before the pull: flows/source_schema.py.)

A value that does not fit its staging (and warehouse) column cannot be staged at all: text longer than the
column, a number beyond its precision (10^20 in a numeric(18, 2)) or an integer beyond its type's range. When
a pull fails on one (SQLSTATE 22001 or 22003), the window's rows holding such values are read from the source
and recorded, each reason naming the column, the value and what the column allows, and the window is pulled
again without them (the check costs a read of the window, so it runs only then). If that pull still fails,
ValueDoesNotFit says where and what to do.

Rules, set-based over the staging table (one scan counts every rule; rows move only when some match):

* a NULL business-key column;
* a business key repeated in one extract of a full-compare source (which row is the truth is unknown;
  a cursor source's repeats are versions, and the merge keeps the latest);
* a date or instant outside 1900-2199 (year 1 and 9999 are sentinels, not dates);
* an instant the source declares as past (``past_instants``) later than the source's own clock at the
  run's as-of, plus an hour;
* a declared pair out of order (``ordered_instants``: closed before created, say), compared as instants:
  local times in a daylight-saving change are first resolved by the rule of flows/local_times.py;
* NaN or an infinity in a numeric column, a value outside its declared domain (flows/domains.py).

The run goes on without the quarantined rows unless they exceed ``PMW_QUARANTINE_MAX_SHARE`` of the
extract: then the pull fails (the quarantined rows stay recorded for inspection, nothing is loaded, no
watermark moves). A quarantined cursor row is behind its watermark once the run succeeds; when the source
fixes it, its change time moves and the next run reads it again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows import dialects, extract, local_times
from flows.domains import NUMERIC_TYPES, Rule, domain_rules
from flows.errors import SourceError
from flows.extract import ExtractWindow
from flows.sources import SourceObject

EARLIEST, LATEST = "1900-01-01", "2200-01-01"
CLOCK_SLACK = timedelta(hours=1)
LOCAL_TIMESTAMP_TYPES = ("timestamp without time zone", "datetime", "datetime2", "smalldatetime")
DATE_TYPES = ("date", "timestamp with time zone", "datetimeoffset", *LOCAL_TIMESTAMP_TYPES)
TEXT_TYPES = ("character varying", "character", "varchar", "char", "nvarchar", "nchar")
INTEGER_RANGES = {"smallint": (-(2**15), 2**15 - 1), "integer": (-(2**31), 2**31 - 1), "int": (-(2**31), 2**31 - 1),
                  "bigint": (-(2**63), 2**63 - 1), "tinyint": (0, 255)}  # fmt: skip
HALF = Decimal("0.5")


class QuarantineThresholdExceeded(SourceError):
    """Too many of an extract's rows were rejected to trust the rest."""


class ValueDoesNotFit(SourceError):
    """A source value too long or too large for its column that no staging limit accounts for, so the rows
    holding it cannot be set aside: it overflows in the source object itself (a view's expression), or in a
    staging column of a type the limits do not cover (floating point, money)."""

    def __init__(self, message: str, source: str) -> None:
        super().__init__(message)
        self.source = source

    def __reduce__(self) -> tuple[type[ValueDoesNotFit], tuple[str, str]]:
        return type(self), (str(self), self.source)  # picklable, for Prefect's stored states

    @classmethod
    def in_pull(
        cls, source: SourceObject, window: ExtractWindow, limits: list[ColumnLimit], cause: BaseException
    ) -> ValueDoesNotFit:
        orig = getattr(cause, "orig", cause)
        said = " ".join(line.strip() for line in str(orig).strip().splitlines()[:2])  # the message, its DETAIL
        where = f"{source.source_schema}.{source.source_table}"
        part = f", partition {window.partition}" if window.partition else ""
        span = f", {window.window_from or 'the beginning'} to {window.window_to}" if window.window_to else ""
        checked = ", ".join(f"{limit.column} {limit.type_name}" for limit in limits) or "none"
        return cls(
            f"pulling {source.name!r} from {where}{part}{span} failed: {said}. Setting aside the rows whose values "
            f"do not fit their staging columns (checked: {checked}) and pulling again without them fails the same "
            f"way, so the value overflows in {where} itself (a view's expression, say) or in a column of "
            f"stg.{source.staging_table} of a type not checked. Find the row at the source (the database's message "
            "says what is allowed), fix it there or widen the staging and warehouse column in a revision, and run "
            "again; this run loads nothing and moves no watermark.",
            source.name,
        )


@dataclass(frozen=True)
class ColumnLimit:
    """What one staging column can hold: at most ``max_length`` characters, or a number strictly between ``low``
    and ``high`` before the column rounds it (to its scale; to a whole number for an integer type)."""

    column: str
    type_name: str  # as the reasons name it: numeric(18, 2), integer, character varying(500)
    max_length: int | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    allowed: str = ""  # a number's range in words

    def fits(self, value: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        """SQL: ``value`` (a source column) is NULL or fits this column."""
        if self.max_length is not None:
            within = sa.func.char_length(value) <= self.max_length
        else:
            within = sa.and_(value > self.low, value < self.high)
        return sa.or_(value.is_(None), within)

    def reason(self, value: object) -> str:
        """Why ``value``, which does not fit, was quarantined."""
        if self.max_length is not None:
            return f"{self.column} longer than {self.max_length} characters ({len(str(value))})"
        if isinstance(value, Decimal | float) and not Decimal(value).is_finite():  # as flows/domains.py says it
            return f"{self.column} {value} is not a number (NaN and infinities never are)"
        return f"{self.column} {value} does not fit {self.type_name} ({self.allowed})"


def staging_limits(warehouse: Engine, source: SourceObject) -> list[ColumnLimit]:
    """The limits of the staging columns of ``source`` that a source value can break: bounded text, numbers of a
    declared precision, integers. Read from the catalog only when a pull failed on such a value."""
    with warehouse.connect() as conn:
        found = conn.execute(
            sa.text("SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale "
                    "FROM information_schema.columns WHERE table_schema = 'stg' AND table_name = :t "
                    "ORDER BY ordinal_position"),
            {"t": source.staging_table},
        ).all()  # fmt: skip
    limits = (_limit(*row) for row in found if row[0] in source.columns)
    return [limit for limit in limits if limit is not None]


def _limit(
    column: str, data_type: str, length: int | None, precision: int | None, scale: int | None
) -> ColumnLimit | None:
    kind = data_type.lower()
    if kind in TEXT_TYPES and length is not None and length > 0:  # SQL Server's (max) is -1: no limit
        return ColumnLimit(column, f"{kind}({length})", max_length=int(length))
    if kind in ("numeric", "decimal") and precision is not None:  # an unconstrained numeric has none
        digits = int(precision) - int(scale or 0)
        # both databases round to the scale first: 9999.995 does not fit numeric(6, 2)
        high = Decimal(10) ** digits - Decimal(5).scaleb(-int(scale or 0) - 1)
        return ColumnLimit(column, f"{kind}({precision}, {scale or 0})", low=-high, high=high,
                           allowed=f"less than 10^{digits} in absolute value")  # fmt: skip
    if kind in INTEGER_RANGES:
        least, most = INTEGER_RANGES[kind]
        # PostgreSQL rounds a fraction to the nearest whole number (SQL Server truncates: stricter here)
        return ColumnLimit(column, kind, low=least - HALF, high=most + HALF, allowed=f"{least} to {most}")
    return None


def fitting(limits: list[ColumnLimit]) -> extract.Keep:
    """For extract.pull: the rows whose every value fits its staging column."""
    return lambda table: sa.and_(sa.true(), *(limit.fits(table.c[limit.column]) for limit in limits))


def value_does_not_fit(exc: BaseException) -> bool:
    """The database refused a value too long or too large for its column: SQLSTATE 22001 (string data right
    truncation) or 22003 (numeric value out of range; SQL Server's errors 8115 and 220), both drivers."""
    orig = getattr(exc, "orig", exc)
    state = getattr(orig, "sqlstate", None) or (str(orig.args[0]) if getattr(orig, "args", None) else "")
    return state in ("22001", "22003")


def quarantine_misfits(
    source_engine: Engine,
    warehouse: Engine,
    source: SourceObject,
    window: ExtractWindow,
    limits: list[ColumnLimit],
    run_id: int,
) -> int:
    """Record the rows of ``window`` with a value that does not fit its staging column (the pull leaves them
    out), each with every such column and value as its reason."""
    if not limits:
        return 0
    query = extract.extract_query(source, window, keep=lambda table: sa.not_(fitting(limits)(table)))
    columns = query.selected_columns
    # which limits each row breaks, said by the database (so by the same predicates the pull filters on)
    broken = [sa.case((limit.fits(columns[limit.column]), 0), else_=1).label(f"pmw_misfit_{i}")
              for i, limit in enumerate(limits)]  # fmt: skip
    with extract.source_connection(source_engine) as conn:
        rows = conn.execute(query.add_columns(*broken)).mappings().all()  # the offending rows only: few
    records = []
    for row in rows:
        values = {name: row[name] for name in source.columns}
        reasons = [limit.reason(values[limit.column]) for i, limit in enumerate(limits) if row[f"pmw_misfit_{i}"]]
        records.append({
            "r": run_id, "s": source.name, "k": "|".join("NULL" if values[k] is None else str(values[k])
                                                         for k in source.business_key),
            "reason": "; ".join(reasons)[:200], "row": json.dumps(values, default=str, ensure_ascii=False),
        })  # fmt: skip
    if records:
        insert = sa.text("INSERT INTO ctl.quarantine (run_id, source_object, business_key, reason, row_data, "
                         "quarantined_at) VALUES (:r, :s, :k, :reason, :row, CURRENT_TIMESTAMP)")  # fmt: skip
        with warehouse.begin() as conn:
            conn.execute(insert, records)
    return len(records)


def pull_fitting(
    source_engine: Engine,
    warehouse: Engine,
    source: SourceObject,
    window: ExtractWindow,
    run_id: int,
    *,
    same_database: bool,
) -> tuple[int, datetime | None, int]:
    """Stage ``window`` (extract.pull). When the database refuses a value that does not fit its staging column,
    the failed pull has staged nothing: record the window's rows with such values in ctl.quarantine and pull the
    window again without them. Returns (rows staged, newest cursor value staged, rows quarantined).

    Raises:
        ValueDoesNotFit: the pull without those rows failed the same way (no row can be named).
    """
    try:
        rows, newest = extract.pull(source_engine, warehouse, source, window, run_id, same_database=same_database)
        return rows, newest, 0
    except Exception as exc:  # COPY raises the driver's own error, not SQLAlchemy's
        if not value_does_not_fit(exc):
            raise
    limits = staging_limits(warehouse, source)  # only now: the check costs a read of the window
    try:
        quarantined = quarantine_misfits(source_engine, warehouse, source, window, limits, run_id)
        rows, newest = extract.pull(
            source_engine, warehouse, source, window, run_id, same_database=same_database, keep=fitting(limits)
        )
    except Exception as exc:
        if not value_does_not_fit(exc):
            raise
        raise ValueDoesNotFit.in_pull(source, window, limits, exc) from exc
    return rows, newest, quarantined


def _rules(source: SourceObject, columns: dict[str, str], dialect: dialects.Dialect) -> list[Rule]:
    """The quarantine rules of this source, whose staging table's {column: catalog type} is ``columns``."""
    rules = [Rule("business key is NULL", " OR ".join(f"s.{k} IS NULL" for k in source.business_key))]
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
        rules.append(Rule("business key repeated in one extract", repeated))
    for column in (name for name, data_type in columns.items() if data_type in DATE_TYPES):
        rules.append(Rule(f"{column} outside {EARLIEST[:4]}-{int(LATEST[:4]) - 1}",
                          f"(s.{column} < '{EARLIEST}' OR s.{column} >= '{LATEST}')"))  # fmt: skip
    for column in source.past_instants:
        limit = "CASE WHEN s.time_zone = 'UTC' THEN :utc_limit ELSE :local_limit END"
        rules.append(Rule(f"{column} in the future", f"s.{column} > {limit}"))
    for earlier, later in source.ordered_instants:  # instants: see local_times for the rows that needed a rule
        rules.append(Rule(f"{later} before {earlier}", f"s.{later} < s.{earlier}"))
    numeric = [name for name, data_type in columns.items() if data_type in NUMERIC_TYPES]
    return rules + domain_rules(source, numeric, dialect)


KEPT_KEYS = "pmw_kept_keys"  # read by warehouse.merge_scd2 and close_vanished_keys when it exists


def keep_quarantined_keys(conn: sa.Connection, source: SourceObject, run_id: int) -> bool:
    """List, for warehouse.merge_scd2 in this transaction, the keys of ``source`` quarantined by this run.

    A full compare reads a key missing from the extract as a hard delete; a quarantined row's key is still
    at the source, so its current version must stay. Returns whether a list was made (drop it after the
    calls: ``drop_kept_keys``).
    """
    if source.strategy != "full_compare":
        return False
    found = {"r": run_id, "s": source.name}
    listed = "FROM ctl.quarantine WHERE run_id = :r AND source_object = :s AND business_key IS NOT NULL"
    if not conn.execute(sa.text(f"SELECT count(*) {listed}"), found).scalar_one():
        return False
    kept = dialects.of(conn).create_temp_table_sql(KEPT_KEYS, "DISTINCT business_key AS key_text", listed)
    conn.execute(sa.text(kept), found)
    return True


def drop_kept_keys(conn: sa.Connection) -> None:
    conn.exec_driver_sql(dialects.of(conn).drop_temp_table_sql(KEPT_KEYS))


def _key_text(source: SourceObject, dialect: dialects.Dialect) -> str:
    """The business key of staged row ``s`` as one text, '|' between parts, 'NULL' for a missing part."""
    parts = [f"COALESCE({dialect.text_sql(f's.{k}', 200)}, {dialect.literal_sql('NULL')})" for k in source.business_key]
    joined = [parts[0]]
    for part in parts[1:]:
        joined += [dialect.literal_sql("|"), part]
    return dialect.concat_sql(*joined)


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
        dialect = dialects.of(conn)
        columns = {
            name: data_type.lower() for name, data_type in conn.execute(
                sa.text("SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_schema = 'stg' AND table_name = :t ORDER BY ordinal_position"),
                {"t": source.staging_table},
            ) if name in source.columns
        }  # fmt: skip
        local = [name for name, data_type in columns.items() if data_type in LOCAL_TIMESTAMP_TYPES]
        key = _key_text(source, dialect)
        # before the rules: they compare instants, and the loaders must store the instants the rule chose
        local_times.resolve_local_times(conn, source, local, run_id, source_timezone, key)
        rules = _rules(source, columns, dialect)
        staged = f"stg.{source.staging_table} AS s WHERE s.run_id = :run_id"
        params = {"run_id": run_id, **limits}
        counts = ", ".join(f"SUM(CASE WHEN {rule.predicate} THEN 1 ELSE 0 END)" for rule in rules)
        found = conn.execute(sa.text(f"SELECT count(*), {counts} FROM {staged}"), params).one()
        total, matches = int(found[0]), [int(n or 0) for n in found[1:]]
        if not any(matches):
            _check_share(source, run_id, rejected_before, total + rejected_before, max_share)
            return rejected_before
        for rule, matched in zip(rules, matches, strict=True):
            if matched:
                conn.execute(sa.text(
                    "INSERT INTO ctl.quarantine (run_id, source_object, business_key, reason, row_data, "
                    f"quarantined_at) SELECT :run_id, :source, {key}, {rule.reason_sql or ':reason'}, "
                    f"{dialect.row_json_sql()}, CURRENT_TIMESTAMP FROM {staged} AND ({rule.predicate})"
                ), {**params, "source": source.name, "reason": rule.reason})  # fmt: skip
        any_rule = " OR ".join(f"({rule.predicate})" for rule in rules)
        staging = f"stg.{source.staging_table}"
        deleted = dialect.delete_sql(staging, "s", f"s.run_id = :run_id AND ({any_rule})")
        moved = conn.execute(sa.text(deleted), params).rowcount
        local_times.forget_quarantined(conn, source, run_id)
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
