"""A comparable picture of the warehouse schema, read from PostgreSQL's catalogs."""

from __future__ import annotations

import sqlalchemy as sa

WAREHOUSE_SCHEMAS = ("ctl", "stg", "dim", "fact", "brg", "mart", "warehouse")

_QUERIES = {
    "schemas": """
        SELECT nspname FROM pg_namespace WHERE nspname = ANY(:schemas) ORDER BY 1
    """,
    "columns": """
        SELECT table_schema, table_name, column_name, ordinal_position, data_type,
               character_maximum_length, numeric_precision, is_nullable, column_default, is_identity
        FROM information_schema.columns WHERE table_schema = ANY(:schemas) ORDER BY 1, 2, 4
    """,
    "constraints": """
        SELECT n.nspname, c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)
        FROM pg_constraint AS c JOIN pg_namespace AS n ON n.oid = c.connamespace
        WHERE n.nspname = ANY(:schemas) ORDER BY 1, 2, 3
    """,
    "indexes": """
        SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = ANY(:schemas) ORDER BY 1, 2, 3
    """,
    "routines": """
        SELECT n.nspname, p.proname, p.prokind, pg_get_function_identity_arguments(p.oid), p.prosrc
        FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY(:schemas) ORDER BY 1, 2, 4
    """,
    "views": """
        SELECT schemaname, viewname, definition FROM pg_views WHERE schemaname = ANY(:schemas) ORDER BY 1, 2
    """,
    "comments": """
        SELECT n.nspname, c.relname, a.attname, col_description(c.oid, a.attnum)
        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0
        WHERE n.nspname = ANY(:schemas) AND col_description(c.oid, a.attnum) IS NOT NULL ORDER BY 1, 2, 3
    """,
}


def snapshot(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every schema object of the warehouse layers, as sorted rows per kind."""
    with engine.connect() as conn:
        picture = {
            kind: [tuple(row) for row in conn.execute(sa.text(sql), {"schemas": list(WAREHOUSE_SCHEMAS)})]
            for kind, sql in _QUERIES.items()
        }
        has_version = conn.execute(sa.text("SELECT to_regclass('public.alembic_version') IS NOT NULL")).scalar()
        picture["version"] = (
            [tuple(r) for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))] if has_version else []
        )
    return picture
