"""The source's shape, checked before a pull: every declared column exists and is of the type family its
staging column expects (the staging tables are the declaration of what is expected).

A type family is what a value means, not how wide it is: text, integer, numeric, date, timestamp without
zone, timestamp with zone, boolean. Widths are the misfit check's business (flows/validation.py); a change of
family is not a value that could be set aside: a money column turned into text stops every pull with a cast
error (even after its values are numeric again), and instants that gained an offset are read as wall times
and silently shifted. Both databases' catalog type names map to the families.

Compatible without being equal: an integer where a numeric is expected (every integer is a number; one too
large for the staging column is set aside as a misfit). The reverse is refused: a fraction would be rounded.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows import extract
from flows.errors import SourceError
from flows.sources import SourceObject

TEXT, INTEGER, NUMERIC, DATE = "text", "integer", "numeric", "date"
LOCAL_TIMESTAMP, ZONED_TIMESTAMP, BOOLEAN = "timestamp without zone", "timestamp with zone", "boolean"

# information_schema.columns.data_type in PostgreSQL and SQL Server, lower case
FAMILIES: dict[str, str] = {
    **dict.fromkeys(("character varying", "character", "text", "varchar", "char", "nvarchar", "nchar", "ntext",
                     "citext", "name"), TEXT),
    **dict.fromkeys(("smallint", "integer", "bigint", "int", "tinyint"), INTEGER),
    **dict.fromkeys(("numeric", "decimal", "money", "smallmoney", "real", "double precision", "float"), NUMERIC),
    "date": DATE,
    **dict.fromkeys(("timestamp without time zone", "datetime", "datetime2", "smalldatetime"), LOCAL_TIMESTAMP),
    **dict.fromkeys(("timestamp with time zone", "datetimeoffset"), ZONED_TIMESTAMP),
    **dict.fromkeys(("boolean", "bit"), BOOLEAN),
}  # fmt: skip
WIDENING = {(NUMERIC, INTEGER)}  # (expected, found) pairs that load without loss

COLUMNS_QUERY = sa.text(
    "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = :schema AND table_name = :table"
)


class SourceSchemaDrift(SourceError):
    """A declared source column is missing from the source object, or of another type family than its staging
    column expects."""


def family(data_type: str) -> str:
    """The type family of a catalog type name (an unknown type is its own family, so it never matches)."""
    return FAMILIES.get(data_type.lower(), data_type.lower())


def compatible(expected: str, found: str) -> bool:
    """Whether a source column of family ``found`` loads into a staging column of family ``expected``."""
    return expected == found or (expected, found) in WIDENING


def column_types(conn: sa.Connection, schema: str, table: str) -> dict[str, str]:
    """{column name (lower case): catalog type name} of one table or view; empty when it does not exist."""
    found = conn.execute(COLUMNS_QUERY, {"schema": schema, "table": table})
    return {name.lower(): data_type for name, data_type in found}


def check_source_columns(source_engine: Engine, warehouse: Engine, source: SourceObject) -> None:
    """Every column the extraction reads exists in the source object and is of the family of its staging
    column, or SourceSchemaDrift names the object, each column, what was expected and what was found.

    One catalog query on the source and one on the warehouse's staging table.
    """
    with extract.source_connection(source_engine) as conn:  # unreachable: SourceUnavailable
        present = column_types(conn, source.source_schema, source.source_table)
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
    with warehouse.connect() as conn:
        expected = column_types(conn, "stg", source.staging_table)
    changed = [
        (name, expected[name.lower()], present[name.lower()])
        for name in source.columns
        if name.lower() in expected and not compatible(family(expected[name.lower()]), family(present[name.lower()]))
    ]
    if changed:
        said = "; ".join(
            f"{name}: expected {family(wanted)} ({wanted}, as stg.{source.staging_table} has it), found "
            f"{family(found)} ({found})"
            for name, wanted, found in changed
        )
        zoned = any(ZONED_TIMESTAMP in (family(w), family(f)) for _, w, f in changed)
        hint = (" An offset-aware time where an offset-less one is declared (or the reverse) would be read in the "
                "wrong zone and shift every instant: convert it in the source object, or change time_semantics "
                "in flows/sources.py and the staging column together." if zoned else "")  # fmt: skip
        raise SourceSchemaDrift(
            f"the source object {qualified} changed the type of {len(changed)} column(s) the extraction of "
            f"{source.name!r} reads: {said}.{hint} Change the column back at the source (or cast it in a view), or "
            "change the staging and warehouse columns in a revision; nothing was staged or loaded."
        )
