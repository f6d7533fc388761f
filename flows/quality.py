"""Data-quality checks declared as data, run after the loads, recorded in ``ctl.data_quality_result``.

A check is a TOML table (see ``flows/checks.toml`` for the built-in ones): a name, a kind, the table
it reads, a severity (``warn`` or ``error``) and a threshold (failing units tolerated). Each kind
compiles to one query that returns the *failing units* (rows, duplicated keys, orphan values...);
the result records how many there are and a few of them as sample keys. Users add checks, or
override a built-in one by name (``enabled = false`` turns it off), in their own TOML file named by
``PMW_QUALITY_CHECKS``: no flow code changes.

Kinds and their options. In every kind, ``where`` is an SQL predicate limiting the rows checked (it
may use ``:as_of``, ``:run_id``, ``:as_of_date_key`` and ``:as_of_month_key``, the run's as-of date and
month in the business time zone as YYYYMMDD keys, as may ``to_where`` and ``sql``) and
``current_only`` keeps only an SCD2 table's current, not deleted rows (``to_current_only`` does the
same for the parent of ``relationships``); the flags are portable, a ``where`` is in your dialect.

* ``not_null``: ``columns`` must not be NULL; units are rows, sampled by ``sample_columns``.
* ``unique``: ``columns`` identify one row; units are duplicated keys. Fact grains use it too.
* ``relationships``: every non-NULL ``columns`` value exists in ``to_table.to_columns`` (restricted
  by ``to_where``); units are distinct orphan values. Map coverage is this kind.
* ``accepted_values``: ``columns[0]`` is one of ``values``; units are distinct other values.
* ``row_count``: between ``min_rows`` and ``max_rows``; one unit when outside.
* ``freshness``: the newest ``columns[0]`` is at most ``max_age_hours`` before the run's as-of.
* ``scd2``: per business key (``columns``): exactly one current row, versions contiguous (each ends
  where the next starts), none empty, the open end only on the current row. ``changed_keys_only``
  limits it to keys the run wrote. Units are versions.
* ``custom_sql``: ``sql`` is a query returning the failing units; the same parameters bind.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from flows.errors import QualityCheckError

Kind = Literal["not_null", "unique", "relationships", "accepted_values", "row_count", "freshness", "scd2", "custom_sql"]
Severity = Literal["warn", "error"]
BUILT_IN_CHECKS = Path(__file__).with_name("checks.toml")
SAMPLE_SIZE = 5
OPEN_END = datetime(9999, 12, 31, tzinfo=UTC)  # valid_to of a current version


@dataclass(frozen=True)
class Check:
    """One declared check."""

    name: str
    kind: Kind
    table: str = ""
    severity: Severity = "error"
    threshold: int = 0
    description: str = ""
    enabled: bool = True
    columns: tuple[str, ...] = ()
    sample_columns: tuple[str, ...] = ()
    where: str | None = None
    current_only: bool = False
    to_table: str | None = None
    to_columns: tuple[str, ...] = ()
    to_where: str | None = None
    to_current_only: bool = False
    values: tuple[str, ...] = ()
    min_rows: int | None = None
    max_rows: int | None = None
    max_age_hours: float | None = None
    changed_keys_only: bool = False
    sql: str | None = None


@dataclass
class CheckResult:
    """The outcome of one check in one run."""

    check: Check
    status: Literal["pass", "fail", "error"]
    failing_count: int = 0
    sample_keys: list[str] = field(default_factory=list)
    message: str | None = None

    @property
    def blocks_run(self) -> bool:
        return self.check.severity == "error" and self.status != "pass"


_OPTIONS = {f.name: f for f in fields(Check)}
_NEEDS = {
    "not_null": ("table", "columns"),
    "unique": ("table", "columns"),
    "relationships": ("table", "columns", "to_table", "to_columns"),
    "accepted_values": ("table", "columns", "values"),
    "row_count": ("table",),
    "freshness": ("table", "columns", "max_age_hours"),
    "scd2": ("table", "columns"),
    "custom_sql": ("sql",),
}


def parse_check(name: str, options: dict[str, Any], origin: str) -> Check:
    """A Check from one TOML table, or a QualityCheckError saying what is wrong and what is allowed."""
    where = f"quality check '{name}' in {origin}"
    unknown = sorted(set(options) - set(_OPTIONS) - {"name"})
    if unknown:
        raise QualityCheckError(f"{where}: unknown option(s) {unknown}; allowed: {sorted(set(_OPTIONS) - {'name'})}")
    kind = str(options.get("kind"))
    if kind not in get_args(Kind):
        raise QualityCheckError(f"{where}: kind {kind!r} is not one of {list(get_args(Kind))}")
    if options.get("severity", "error") not in get_args(Severity):
        raise QualityCheckError(f"{where}: severity {options['severity']!r} is not one of {list(get_args(Severity))}")
    missing = [option for option in _NEEDS[kind] if not options.get(option)]
    if missing:
        raise QualityCheckError(f"{where}: a {kind} check needs {', '.join(missing)}")
    if int(options.get("threshold", 0)) < 0:
        raise QualityCheckError(f"{where}: threshold {options['threshold']} must be 0 or more")
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items() if k != "name"}
    return Check(name=name, **values)


def load_checks(extra: Path | None = None) -> list[Check]:
    """The built-in checks, then the user's file: a check of the same name replaces the built-in one."""
    checks: dict[str, Check] = {}
    for path in [BUILT_IN_CHECKS, *([extra] if extra else [])]:
        try:
            document = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise QualityCheckError(
                f"cannot read quality checks from {path}: {exc}. Point PMW_QUALITY_CHECKS at a TOML file "
                "with one [checks.<name>] table per check."
            ) from exc
        for name, options in document.get("checks", {}).items():
            checks[name] = parse_check(name, options, str(path))
    return [check for check in checks.values() if check.enabled]


def _table(name: str, *columns: str) -> sa.TableClause:
    schema, _, table = name.rpartition(".")
    flags = [sa.column(flag, sa.Boolean) for flag in ("is_current", "is_deleted")]
    return sa.table(table, *(sa.column(c) for c in dict.fromkeys(columns)), *flags, schema=schema or None)


def bind_values(as_of: datetime, run_id: int, time_zone: str = "UTC") -> dict[str, object]:
    """The parameters a check's SQL may use: the run's as-of instant and id, its local date and month."""
    local = as_of.astimezone(ZoneInfo(time_zone)).date()
    return {"as_of": as_of, "run_id": run_id, "as_of_date_key": int(local.strftime("%Y%m%d")),
            "as_of_month_key": int(local.strftime("%Y%m01"))}  # fmt: skip


def _bound(sql: str, binds: dict[str, object]) -> sa.TextClause:
    """SQL text with the check parameters bound where it uses them."""
    used = (name for name in binds if re.search(rf":{name}\b", sql))
    return sa.text(sql).bindparams(*(sa.bindparam(name, binds[name]) for name in used))


def _filter(table: Any, predicate: str | None, current_only: bool, binds: dict[str, object]) -> list[Any]:
    """A check's row filter: its SQL predicate, and (portably) an SCD2 table's current, live rows."""
    conditions: list[Any] = [_bound(f"({predicate})", binds)] if predicate else []
    if current_only:
        conditions += [table.c.is_current == sa.true(), table.c.is_deleted == sa.false()]
    return conditions


def failing_units(check: Check, binds: dict[str, object]) -> sa.Select[Any] | sa.TextClause:
    """The query returning one row per failing unit of ``check`` (its columns are the sample keys)."""
    t = _table(check.table, *check.columns, *check.sample_columns)
    cols = [t.c[c] for c in check.columns]
    scope = _filter(t, check.where, check.current_only, binds)
    if check.kind == "not_null":
        sample = [t.c[c] for c in check.sample_columns or check.columns]
        return sa.select(*sample).where(*scope, sa.or_(*(c.is_(None) for c in cols)))
    if check.kind == "unique":
        count = sa.func.count()
        return sa.select(*cols, count.label("rows")).where(*scope).group_by(*cols).having(count > 1)
    if check.kind == "relationships":
        parent = _table(check.to_table or "", *check.to_columns).alias("parent")
        matches = [parent.c[p] == c for p, c in zip(check.to_columns, cols, strict=True)]
        in_parent = _filter(parent, check.to_where, check.to_current_only, binds)
        exists = sa.select(sa.literal(1)).select_from(parent).where(*matches, *in_parent).exists()
        return sa.select(*cols).distinct().where(*scope, *(c.is_not(None) for c in cols), ~exists)
    if check.kind == "accepted_values":
        return sa.select(cols[0]).distinct().where(*scope, cols[0].not_in(check.values))
    if check.kind == "row_count":
        count = sa.func.count()
        bounds = [count < check.min_rows] if check.min_rows is not None else []
        bounds += [count > check.max_rows] if check.max_rows is not None else []
        return sa.select(count.label("row_count")).select_from(t).where(*scope).having(sa.or_(*bounds))
    if check.kind == "freshness":
        newest = sa.func.max(cols[0])
        as_of: datetime = binds["as_of"]  # type: ignore[assignment]
        cutoff = sa.bindparam("cutoff", as_of - timedelta(hours=check.max_age_hours or 0), sa.DateTime(timezone=True))
        return sa.select(newest.label("newest")).where(*scope).having(sa.or_(newest.is_(None), newest < cutoff))
    if check.kind == "scd2":
        return _scd2_violations(check, binds)
    return _bound(f"SELECT * FROM ({check.sql}) AS failing", binds)


def _scd2_violations(check: Check, binds: dict[str, object]) -> sa.Select[Any]:
    t = _table(check.table, *check.columns, "valid_from", "valid_to", "run_id")
    is_current = t.c.is_current
    keys = [t.c[c] for c in check.columns]
    scope = _filter(t, check.where, False, binds)
    if check.changed_keys_only:
        written = _table(check.table, *check.columns, "run_id").alias("written")
        scope.append(
            sa.select(sa.literal(1))
            .select_from(written)
            .where(written.c.run_id == binds["run_id"], *(written.c[c] == t.c[c] for c in check.columns))
            .exists()
        )
    versions = (
        sa.select(
            *keys,
            t.c.valid_from,
            t.c.valid_to,
            is_current.label("is_current"),
            sa.func.lead(t.c.valid_from).over(partition_by=keys, order_by=t.c.valid_from).label("next_from"),
            sa.func.sum(sa.case((is_current, 1), else_=0)).over(partition_by=keys).label("current_rows"),
        )
        .where(*scope)
        .subquery("versions")
    )
    v = versions.c
    open_end = sa.bindparam("open_end", OPEN_END, type_=sa.DateTime(timezone=True))
    broken = sa.or_(
        v.current_rows != 1,
        v.valid_to <= v.valid_from,
        sa.and_(v.next_from.is_not(None), sa.or_(v.next_from != v.valid_to, v.is_current)),
        sa.and_(v.next_from.is_(None), sa.or_(~v.is_current, v.valid_to != open_end)),
    )
    return sa.select(*(v[c] for c in check.columns), v.valid_from).where(broken)


def run_check(conn: sa.Connection, check: Check, binds: dict[str, object]) -> CheckResult:
    """Run one check inside a savepoint: a check that cannot run is recorded as ``error``."""
    units = failing_units(check, binds)
    failing = (units if isinstance(units, sa.Select) else units.columns()).subquery("failing")
    try:
        with conn.begin_nested():
            count = int(conn.execute(sa.select(sa.func.count()).select_from(failing)).scalar_one())
            limited = units.limit(SAMPLE_SIZE) if isinstance(units, sa.Select) else units
            sample = conn.execute(limited).fetchmany(SAMPLE_SIZE) if count else []
    except sa.exc.DBAPIError as exc:
        from flows.run_log import error_text

        return CheckResult(check, "error", message=f"the check's query failed: {error_text(exc)}")
    keys = [", ".join("NULL" if value is None else str(value) for value in row) for row in sample]
    status: Literal["pass", "fail"] = "pass" if count <= check.threshold else "fail"
    message = None if status == "pass" else f"{count} failing (threshold {check.threshold})"
    return CheckResult(check, status, count, keys, message)


def run_checks(
    engine: sa.Engine, checks: list[Check], as_of: datetime, run_id: int, time_zone: str = "UTC"
) -> list[CheckResult]:
    """Every check, each in its own savepoint of one read transaction."""
    binds = bind_values(as_of, run_id, time_zone)
    with engine.connect() as conn, conn.begin():
        return [run_check(conn, check, binds) for check in checks]
