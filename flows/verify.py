"""`pmw verify --against URL`: the same runs into the embedded PostgreSQL warehouse and into the given one,
then every dim, fact, brg and mart object compared value for value.

The demo source is seeded on the embedded server (database ``pmw_verify_source``; on the configured
warehouse's server instead when that is PostgreSQL), and both warehouses read it: the reference
(``pmw_verify_reference``, recreated each time, on the same server) and the target, which must be empty (no
warehouse schema, or one at head that has recorded no run: a DBA may have deployed it with the offline
script). The runs are the initial load and one per advanced day, at the source's clock.

Surrogate keys are assigned by each database (sequences, IDENTITY) in an order neither promises, so a
column holding one (``<dimension>_sk``, ``issue_key``) is compared as the row it points to: the dimension
row's other values. ``row_hash`` is left out: each dialect hashes its own way. Values are compared as
Python reads them, normalised where the dialects only spell
them differently (1.50 and 1.5, a BIT and a boolean, an offset and UTC).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from flows import database, demo_source, embedded, migrate
from flows.errors import ConfigurationError, WarehouseError
from flows.redaction import redact_url, register_url
from flows.settings import Settings

COMPARED_SCHEMAS = ("dim", "fact", "brg", "mart")
SOURCE_DB = "pmw_verify_source"
REFERENCE_DB = "pmw_verify_reference"
SHOWN_ROWS = 3
# each dialect hashes a dimension row its own way (a BIGINT of md5 on PostgreSQL, MD5 hex text on SQL
# Server), to notice changes, never to report: left out of the comparison
LEFT_OUT_COLUMNS = frozenset({"row_hash"})


@dataclass(frozen=True)
class Comparison:
    """One object's rows in the reference and the target, and the rows only one of them has."""

    name: str
    reference_rows: int
    target_rows: int
    only_in_reference: list[str]  # each row as it reads there (its keys that warehouse's own)
    only_in_target: list[str]
    missing: bool = False  # the target has no such object

    @property
    def equal(self) -> bool:
        return not (self.missing or self.only_in_reference or self.only_in_target)


@contextmanager
def warehouse_at(url: URL, source: URL) -> Iterator[None]:
    """While inside, the settings point the warehouse at ``url`` and the source at ``source``."""
    names = ("PMW_WAREHOUSE_URL", "PMW_WAREHOUSE_DB", "PMW_SOURCE_URL")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["PMW_WAREHOUSE_URL"] = url.render_as_string(hide_password=False)
    os.environ["PMW_WAREHOUSE_DB"] = str(url.database)
    os.environ["PMW_SOURCE_URL"] = source.render_as_string(hide_password=False)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        database.dispose_pooled_engines()  # the flow's pooled sessions on the other warehouse


def require_empty(engine: sa.Engine) -> None:
    """The target must hold no warehouse yet: verify writes a whole one into it.

    Raises:
        ConfigurationError: it has a warehouse schema that is not at head, or one that has recorded runs.
    """
    with engine.connect() as conn:
        current = migrate.current_revision(conn)
        if current is None:
            return
        runs = conn.execute(sa.text("SELECT COUNT(*) FROM ctl.run")).scalar() if current in migrate.heads() else None
    if runs == 0:
        return
    raise ConfigurationError(
        "--against", redact_url(engine.url.render_as_string(hide_password=False)),
        "an empty database (no warehouse schema, or one at head that has recorded no run)",
        "verify writes a whole warehouse into it: create an empty scratch database for it",
    )  # fmt: skip


def replay(
    source: URL, warehouses: list[URL], *, scale: int, seed: int, days: int, source_timezone: str
) -> list[datetime]:
    """Seed the source, then run every warehouse at each of its instants: the initial load and each advanced
    day. Returns the instants run."""
    from flows import runs

    source_engine = sa.create_engine(source, poolclass=sa.pool.NullPool)
    try:
        demo_source.seed(source_engine, scale=scale, seed_value=seed, replace=True, source_timezone=source_timezone)
        for url in warehouses:
            with warehouse_at(url, source):
                migrate.upgrade("head")
        instants = []
        for day in range(days + 1):
            if day:
                demo_source.advance(source_engine, days=1, source_timezone=source_timezone)
            as_of = demo_source.clock(source_engine).replace(tzinfo=UTC)  # type: ignore[union-attr]
            for url in warehouses:
                with warehouse_at(url, source):
                    result = runs.run_pipeline(as_of)
                if result["status"] != "success":
                    raise WarehouseError(
                        f"verify: the run as of {as_of:%Y-%m-%d %H:%M} UTC into {redact_url(url)} "
                        f"ended {result['status']}; `pmw status` against it says why"
                    )
            instants.append(as_of)
        return instants
    finally:
        source_engine.dispose()


def _objects(conn: sa.Connection) -> list[str]:
    inspector = sa.inspect(conn)
    found = []
    for schema in COMPARED_SCHEMAS:
        found += [f"{schema}.{t}" for t in inspector.get_table_names(schema=schema)]
        found += [f"{schema}.{v}" for v in inspector.get_view_names(schema=schema)]
    return sorted(found)


def _normalised(value: Any) -> Any:
    # (a Decimal needs nothing: 1.50 and 1.5 are equal and hash alike, as are 1, 1.0 and Decimal(1))
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def _key_columns(dimension: str) -> str:
    """The column holding a dimension row's surrogate key."""
    return "issue_key" if dimension == "issue_key" else f"{dimension}_sk"


def _rows(conn: sa.Connection, name: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    schema, table = name.split(".")
    selected = sa.select(sa.text("*")).select_from(sa.table(table, schema=schema))
    result = conn.execute(selected)
    columns = list(result.keys())
    kept = [i for i, c in enumerate(columns) if c not in LEFT_OUT_COLUMNS]
    return [columns[i] for i in kept], [tuple(_normalised(row[i]) for i in kept) for row in result]


class _Snapshot:
    """Every compared object of one warehouse, with surrogate keys read as the rows they point to."""

    def __init__(self, engine: sa.Engine) -> None:
        with engine.connect() as conn:
            self.objects = _objects(conn)
            self.raw = {name: _rows(conn, name) for name in self.objects}
        self.identity: dict[str, dict[Any, tuple[Any, ...]]] = {}
        for name in self.objects:
            schema, table = name.split(".")
            columns, rows = self.raw[name]
            key = _key_columns(table)
            if schema == "dim" and key in columns:
                at = columns.index(key)
                kept = [i for i, c in enumerate(columns) if not _is_key(c)]
                self.identity[key] = {row[at]: tuple(row[i] for i in kept) for row in rows}

    def rows(self, name: str) -> tuple[Counter[tuple[Any, ...]], dict[tuple[Any, ...], str]]:
        """The object's rows with keys translated, counted, and each as it reads in this warehouse."""
        columns, rows = self.raw[name]
        translate = [self.identity.get(c) for c in columns]
        counted: Counter[tuple[Any, ...]] = Counter()
        shown: dict[tuple[Any, ...], str] = {}
        for row in rows:
            translated = tuple(
                t.get(v, ("<missing>", v)) if t is not None else v for v, t in zip(row, translate, strict=True)
            )
            counted[translated] += 1
            shown.setdefault(translated, ", ".join(f"{c}={v!s}" for c, v in zip(columns, row, strict=True)))
        return counted, shown


def _is_key(column: str) -> bool:
    return column.endswith("_sk") or column == "issue_key"


def compare(reference: sa.Engine, target: sa.Engine) -> list[Comparison]:
    """Every dim, fact, brg and mart object of the reference, compared with the target's."""
    expected, found = _Snapshot(reference), _Snapshot(target)
    comparisons = []
    for name in expected.objects:
        if name not in found.raw:
            comparisons.append(Comparison(name, len(expected.raw[name][1]), 0, [], [], missing=True))
            continue
        (mine, mine_shown), (theirs, theirs_shown) = expected.rows(name), found.rows(name)
        comparisons.append(Comparison(
            name, sum(mine.values()), sum(theirs.values()),
            sorted(mine_shown[row] for row in (mine - theirs).elements()),
            sorted(theirs_shown[row] for row in (theirs - mine).elements()),
        ))  # fmt: skip
    return comparisons


def report(comparisons: list[Comparison]) -> str:
    """A table of the objects, equal or different, with the first differing rows of each different one."""
    width = max(len(c.name) for c in comparisons)
    lines = [f"{'object':<{width}}  {'reference':>9}  {'target':>9}  result"]
    lines.append(f"{'-' * width}  {'-' * 9}  {'-' * 9}  ------")
    for c in comparisons:
        result = (
            "missing in target"
            if c.missing
            else "equal"
            if c.equal
            else (
                f"different: {len(c.only_in_reference)} rows only in reference, {len(c.only_in_target)} only in target"
            )
        )
        lines.append(f"{c.name:<{width}}  {c.reference_rows:>9}  {c.target_rows:>9}  {result}")
    for c in comparisons:
        if c.equal or c.missing:
            continue
        lines.append(f"\n{c.name} (keys as each warehouse numbers them; compared as the rows they point to):")
        lines += [f"  reference only: {row}" for row in c.only_in_reference[:SHOWN_ROWS]]
        lines += [f"  target only:    {row}" for row in c.only_in_target[:SHOWN_ROWS]]
    equal = sum(c.equal for c in comparisons)
    lines.append(f"\n{equal} of {len(comparisons)} objects equal")
    return "\n".join(lines)


def reference_server(settings: Settings) -> URL:
    """An administrative URL of the PostgreSQL server verify keeps its two databases on: the configured
    warehouse's server when that is PostgreSQL, else the embedded server (started if need be)."""
    if settings.warehouse_url is not None:
        configured = database.warehouse_url(settings)
        if configured.get_backend_name() == "postgresql":
            return configured.set(database="postgres")
    return make_url(embedded.ensure_running(settings.home_path).url("postgres"))


def verify(settings: Settings, against: str, *, scale: int = 1, seed: int = 42, days: int = 2) -> list[Comparison]:
    """Run the same runs into the embedded reference warehouse and the ``against`` one, and compare them."""
    register_url(against)  # before anything can fail and print it
    target = make_url(against)
    if target.get_backend_name() not in database.SUPPORTED_DIALECTS:
        raise ConfigurationError("--against", redact_url(against), " or ".join(database.SUPPORTED_DIALECTS) +
                                 " URL", "give the SQLAlchemy URL of an empty scratch database")  # fmt: skip
    if target.get_backend_name() == "postgresql" and target.database in (REFERENCE_DB, SOURCE_DB):
        raise ConfigurationError("--against", redact_url(against), f"a database other than {REFERENCE_DB} and "
                                 f"{SOURCE_DB}", "those two are verify's own")  # fmt: skip
    target_engine = database.create_engine(target, setting="--against")  # its driver, before any server starts
    try:
        require_empty(target_engine)
        admin = reference_server(settings)
        reference = admin.set(database=REFERENCE_DB)
        database.drop_database(admin, REFERENCE_DB)
        database.ensure_database(admin, REFERENCE_DB)
        database.ensure_database(admin, SOURCE_DB)
        source = admin.set(database=SOURCE_DB)
        replay(source, [reference, target], scale=scale, seed=seed, days=days, source_timezone=settings.source_timezone)
        reference_engine = database.create_engine(reference)
        try:
            return compare(reference_engine, target_engine)
        finally:
            reference_engine.dispose()
    finally:
        target_engine.dispose()
