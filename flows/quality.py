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
  by ``to_where``); units are distinct orphan values, or with ``units = "rows"`` the rows that carry
  them (the sample then names each orphan value with its row count, the largest first). The columns
  listed in ``ignore_case_and_spaces`` meet their parent columns trimmed and case-insensitively
  (business-rules.md: raw values meet the maps so), compared once per distinct value. Map coverage
  is this kind.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from flows import dialects
from flows.errors import QualityCheckError

Kind = Literal["not_null", "unique", "relationships", "accepted_values", "row_count", "freshness", "scd2", "custom_sql"]
Severity = Literal["warn", "error"]
BUILT_IN_CHECKS = Path(str(resources.files("flows") / "checks.toml"))  # package data, in a wheel too
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
    units: Literal["values", "rows"] = "values"
    ignore_case_and_spaces: tuple[str, ...] = ()


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


IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_Table = Annotated[str, StringConstraints(pattern=rf"^{IDENTIFIER}\.{IDENTIFIER}$")]
_Column = Annotated[str, StringConstraints(pattern=rf"^{IDENTIFIER}$")]
_Columns = Annotated[tuple[_Column, ...], Field(min_length=1)]
_Sql = Annotated[str, StringConstraints(min_length=1)]


class _Declared(BaseModel):
    """The options every kind has; strict, so ``threshold = "5"`` is refused rather than coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    severity: Severity = "error"
    threshold: Annotated[int, Field(ge=0)] = 0
    description: str = ""
    enabled: bool = True


class _OnTable(_Declared):
    table: _Table
    where: _Sql | None = None
    current_only: bool = False


class NotNull(_OnTable):
    kind: Literal["not_null"]
    columns: _Columns
    sample_columns: tuple[_Column, ...] = ()


class Unique(_OnTable):
    kind: Literal["unique"]
    columns: _Columns


class Relationships(_OnTable):
    kind: Literal["relationships"]
    columns: _Columns
    to_table: _Table
    to_columns: _Columns
    to_where: _Sql | None = None
    to_current_only: bool = False
    units: Literal["values", "rows"] = "values"
    ignore_case_and_spaces: tuple[_Column, ...] = ()


class AcceptedValues(_OnTable):
    kind: Literal["accepted_values"]
    columns: Annotated[tuple[_Column], Field(min_length=1, max_length=1)]
    values: Annotated[tuple[str, ...], Field(min_length=1)]


class RowCount(_OnTable):
    kind: Literal["row_count"]
    min_rows: Annotated[int, Field(ge=0)] | None = None
    max_rows: Annotated[int, Field(ge=0)] | None = None


class Freshness(_OnTable):
    kind: Literal["freshness"]
    columns: Annotated[tuple[_Column], Field(min_length=1, max_length=1)]
    max_age_hours: Annotated[float, Field(gt=0)]  # strict still takes 6 for 6.0


class Scd2(_OnTable):
    kind: Literal["scd2"]
    columns: _Columns
    changed_keys_only: bool = False


class CustomSql(_Declared):
    kind: Literal["custom_sql"]
    sql: _Sql


_KINDS = (NotNull, Unique, Relationships, AcceptedValues, RowCount, Freshness, Scd2, CustomSql)
_DECLARATION: TypeAdapter[Any] = TypeAdapter(
    Annotated[Union[_KINDS], Field(discriminator="kind")]  # type: ignore[arg-type]  # noqa: UP007
)


def _allowed(kind: str) -> str:
    model = next(m for m in _KINDS if m.model_fields["kind"].annotation == Literal[kind])  # type: ignore[comparison-overlap]
    options = sorted(model.model_fields.items(), key=lambda item: not item[1].is_required())
    return ", ".join(f"{name} ({'required' if f.is_required() else 'optional'})" for name, f in options)


def parse_check(name: str, options: dict[str, Any], origin: str) -> Check:
    """A Check from one TOML table, or a QualityCheckError naming the check, option, value and what is allowed.

    Validated when the file is read (before a run reads anything), one typed model per kind.
    """
    where = f"quality check '{name}' in {origin}"
    kind = str(options.get("kind"))
    if kind not in get_args(Kind):
        raise QualityCheckError(f"{where}: kind {kind!r} is not one of {list(get_args(Kind))}")
    try:
        # TOML arrays arrive as lists; the models hold tuples (a Check is immutable)
        given = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items() if k != "name"}
        declared = _DECLARATION.validate_python(given)
    except ValidationError as exc:
        errors = exc.errors()
        # an option whose items failed also fails its own length rule: report the items only
        errors = [e for e in errors if not any(o["loc"][: len(e["loc"])] == e["loc"] and o is not e for o in errors)]
        problems = "; ".join(_problem(error) for error in errors)
        raise QualityCheckError(f"{where}: {problems}. A {kind} check takes: {_allowed(kind)}.") from None
    values = declared.model_dump()
    if kind == "row_count" and values["min_rows"] is None and values["max_rows"] is None:
        raise QualityCheckError(f"{where}: a row_count check needs min_rows or max_rows (or both)")
    stray = [c for c in values.get("ignore_case_and_spaces", ()) if c not in values["columns"]]
    if stray:
        raise QualityCheckError(
            f"{where}: ignore_case_and_spaces names {stray}, which are not in columns {list(values['columns'])}; "
            "list only columns the check compares"
        )
    return Check(name=name, **values)


def _problem(error: Any) -> str:
    option = ".".join(str(part) for part in error["loc"][1:]) or "the table"
    if error["type"] == "missing":
        return f"option {option} is required"
    if error["type"] == "extra_forbidden":
        return f"unknown option {option}"
    if error["type"] == "string_pattern_mismatch":
        shape = "schema.table, like dim.issue" if "table" in option else "a column name (letters, digits, _)"
        return f"option {option} = {error['input']!r} must be {shape}"
    message = str(error["msg"])
    return f"option {option} = {error['input']!r}: {message[:1].lower()}{message[1:]}"


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
            if options.get("enabled") is False:  # turning a check off needs no other valid option
                checks.pop(name, None)
                continue
            checks[name] = parse_check(name, options, str(path))
    return list(checks.values())


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
        return _orphans(check, t, cols, scope, binds)
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


def _loose(value: Any) -> Any:
    """A value as business-rules.md matches raw values with the maps: trimmed, lower case (portable SQL)."""
    return sa.func.lower(sa.func.ltrim(sa.func.rtrim(value)))


def _orphans(check: Check, t: Any, cols: list[Any], scope: list[Any], binds: dict[str, object]) -> sa.Select[Any]:
    """Non-NULL ``columns`` values missing from the parent: distinct values, or with their row counts."""
    parent = _table(check.to_table or "", *check.to_columns).alias("parent")
    in_parent = _filter(parent, check.to_where, check.to_current_only, binds)
    present = [c.is_not(None) for c in cols]
    count = sa.func.count().label("rows")
    if not check.ignore_case_and_spaces:
        matches = [parent.c[p] == c for p, c in zip(check.to_columns, cols, strict=True)]
        exists = sa.select(sa.literal(1)).select_from(parent).where(*matches, *in_parent).exists()
        if check.units == "rows":
            return sa.select(*cols, count).where(*scope, *present, ~exists).group_by(*cols)
        return sa.select(*cols).distinct().where(*scope, *present, ~exists)
    # group first: each distinct value is trimmed and lower-cased once, not once per row
    grouped = sa.select(*cols, count).where(*scope, *present).group_by(*cols).subquery("grouped")
    keys = [grouped.c[c] for c in check.columns]
    matches = [
        _loose(parent.c[p]) == _loose(k) if c in check.ignore_case_and_spaces else parent.c[p] == k
        for p, c, k in zip(check.to_columns, check.columns, keys, strict=True)
    ]
    exists = sa.select(sa.literal(1)).select_from(parent).where(*matches, *in_parent).exists()
    return sa.select(*keys, *([grouped.c.rows] if check.units == "rows" else [])).where(~exists)


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


# a bound parameter makes psycopg send the check with the extended protocol, which runs exactly one statement:
# a check text that closes its subquery and appends another statement is refused, not run
_ONE_STATEMENT = sa.bindparam("one_statement", 1) == 1


def check_queries(check: Check, binds: dict[str, object]) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The two queries of ``check`` (the same in every dialect): how many units fail, and a sample of them."""
    units = failing_units(check, binds)
    failing = (units if isinstance(units, sa.Select) else units.columns()).subquery("failing")
    # units = "rows": the failing units are the rows behind the orphan values, sampled largest value first
    by_rows = check.units == "rows"
    units_counted = sa.func.coalesce(sa.func.sum(failing.c.rows), 0) if by_rows else sa.func.count()
    counted = sa.select(units_counted).select_from(failing).where(_ONE_STATEMENT)
    sampled = sa.select(sa.text("*")).select_from(failing).where(_ONE_STATEMENT).limit(SAMPLE_SIZE)
    if by_rows:
        sampled = sampled.order_by(failing.c.rows.desc(), *(failing.c[c] for c in check.columns))
    return counted, sampled


def run_check(conn: sa.Connection, check: Check, binds: dict[str, object]) -> CheckResult:
    """Run one check inside a savepoint: a check that cannot run is recorded as ``error``."""
    counted, sampled = check_queries(check, binds)
    by_rows = check.units == "rows"
    try:
        with conn.begin_nested():
            count = int(conn.execute(counted).scalar_one())
            sample = conn.execute(sampled).fetchmany(SAMPLE_SIZE) if count else []
    except sa.exc.DBAPIError as exc:
        from flows.run_log import error_text

        return CheckResult(check, "error", message=f"the check's query failed: {error_text(exc)}")
    keys = [", ".join("NULL" if value is None else str(value) for value in row) for row in sample]
    if by_rows:  # "ACC, frobnicated: 2 rows": the value, then how many rows carry it
        keys = [
            f"{key.rpartition(', ')[0]}: {row[-1]} row{'' if row[-1] == 1 else 's'}"
            for key, row in zip(keys, sample, strict=True)
        ]
    status: Literal["pass", "fail"] = "pass" if count <= check.threshold else "fail"
    message = None if status == "pass" else f"{count} failing (threshold {check.threshold})"
    return CheckResult(check, status, count, keys, message)


def run_checks(
    engine: sa.Engine,
    checks: list[Check],
    as_of: datetime,
    run_id: int,
    time_zone: str = "UTC",
    *,
    as_role: str | None = None,
    timeout_seconds: float = 60.0,
) -> list[CheckResult]:
    """Every check, each in its own savepoint of one read-only transaction that is never committed.

    ``as_role`` is the role the checks run as where the connection's user may take it (the analyst, who
    can read the dimensions and facts and write nothing); each statement stops after ``timeout_seconds``.
    """
    binds, dialect = bind_values(as_of, run_id, time_zone), dialects.of(engine)
    with engine.connect() as conn:
        conn.begin()
        try:
            dialect.restrict_to_reading(conn, as_role, timeout_seconds)
            return [run_check(conn, check, binds) for check in checks]
        finally:
            dialect.end_restriction(conn, as_role)
            conn.rollback()  # a check writes nothing: there is nothing to commit
