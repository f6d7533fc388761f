"""Invariants of the whole warehouse, checked after every run of the soak (and by its CI test).

Each check returns a count of violations; ``violations`` keeps only the non-zero ones, so a healthy
warehouse gives ``{}``. Fact and bridge tables are read from the catalog, so a new one is covered
without touching this file: its grain is its primary key, ``*_sk`` columns point at ``dim.<name>``,
``*date_key`` columns at ``dim.date``.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from dimension_checks import scd2_violations

FACT_SCHEMAS = ("fact", "brg")


def _fact_columns(conn: sa.Connection) -> dict[str, list[tuple[str, bool]]]:
    """table -> [(column, is_primary_key)] for every fact and bridge table."""
    found = conn.execute(sa.text("""
        SELECT c.table_schema || '.' || c.table_name AS table_name, c.column_name,
            EXISTS (SELECT 1 FROM information_schema.table_constraints AS t
                JOIN information_schema.key_column_usage AS k
                    ON k.constraint_name = t.constraint_name AND k.table_schema = t.table_schema
                WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema = c.table_schema
                    AND t.table_name = c.table_name AND k.column_name = c.column_name) AS in_key
        FROM information_schema.columns AS c
        WHERE c.table_schema = ANY(:schemas)
        ORDER BY 1, c.ordinal_position"""), {"schemas": list(FACT_SCHEMAS)})  # fmt: skip
    tables: dict[str, list[tuple[str, bool]]] = {}
    for row in found:
        tables.setdefault(row.table_name, []).append((row.column_name, row.in_key))
    return tables


def violations(engine: sa.Engine, as_of: datetime, time_zone: str = "Australia/Sydney") -> dict[str, int]:
    found = {
        f"scd2 {dim} {name}": n for dim, problems in scd2_violations(engine).items() for name, n in problems.items()
    }
    with engine.connect() as conn:

        def count(name: str, sql: str, **params: object) -> None:
            found[name] = int(conn.execute(sa.text(sql), params).scalar_one())

        for table, columns in _fact_columns(conn).items():
            grain = [name for name, in_key in columns if in_key]
            if not grain:  # nothing enforces the grain any more
                found[f"{table} has no primary key"] = 1
                continue
            count(f"{table} grain repeated", f"SELECT count(*) FROM (SELECT 1 FROM {table} "
                  f"GROUP BY {', '.join(grain)} HAVING count(*) > 1) AS d")  # fmt: skip
            for column, _ in columns:
                if column.endswith(("_sk", "_key")):
                    count(f"{table}.{column} NULL", f"SELECT count(*) FROM {table} WHERE {column} IS NULL")
                if column.endswith("date_key"):
                    count(f"{table}.{column} not in dim.date", f"SELECT count(*) FROM {table} AS f "
                          f"WHERE NOT EXISTS (SELECT 1 FROM dim.date AS d WHERE d.date_key = f.{column})")  # fmt: skip
                elif column.endswith("_sk"):
                    dim = column.removesuffix("_sk")
                    count(f"{table}.{column} orphan", f"SELECT count(*) FROM {table} AS f "
                          f"WHERE NOT EXISTS (SELECT 1 FROM dim.{dim} AS d WHERE d.{column} = f.{column})")  # fmt: skip

        # reconciled with the source: every issue with its deletion flag; live reviews, services, projects
        count("issues not reconciled", """SELECT count(*) FROM dbo."vw_ProjectManagement_AllIssues" AS s
            LEFT JOIN dim.issue AS d ON d.is_current AND d.source_system = s.source
                AND d.source_project_id = s.source_project_id AND d.source_issue_id = s.source_issue_id
                AND d.is_deleted = s.is_deleted
            WHERE d.issue_sk IS NULL""")  # fmt: skip
        # and back, warehouse -> source: a live issue key is one the issues view still has (a key removed there
        # or moved to another tracker project is closed as deleted at the source: flows/key_sets.py)
        count("live issue keys missing from the source", """SELECT count(*) FROM dim.issue AS d
            WHERE d.is_current AND NOT d.is_deleted AND NOT d.is_inferred AND d.issue_sk <> -1
                AND NOT EXISTS (SELECT 1 FROM dbo."vw_ProjectManagement_AllIssues" AS s
                    WHERE s.source = d.source_system AND s.source_project_id = d.source_project_id
                        AND s.source_issue_id = d.source_issue_id)""")  # fmt: skip
        # the as-of day's snapshot has exactly the source's live issues (created by the as-of instant: ACC
        # stamps UTC, Revizto the source's local time)
        count("daily snapshot differs from the source's live issues", """SELECT abs(
            (SELECT count(*) FROM fact.issue_daily
                WHERE snapshot_date_key = to_char((:as_of AT TIME ZONE :tz)::date, 'YYYYMMDD')::integer)
            - (SELECT count(*) FROM dbo."vw_ProjectManagement_AllIssues" WHERE NOT is_deleted
                AND CASE WHEN source = 'Revizto' THEN created_at AT TIME ZONE :tz ELSE created_at AT TIME ZONE 'UTC'
                    END <= :as_of))""", as_of=as_of, tz=time_zone)  # fmt: skip
        for dim, table, key in (("review", '"ServiceReviews"', "review_id"), ("service", '"ProjectServices"',
                                "service_id"), ("project", "projects", "project_id")):  # fmt: skip
            count(f"{dim} count differs from the source", f"""SELECT abs(
                (SELECT count(*) FROM dim.{dim} WHERE is_current AND NOT is_deleted AND NOT is_inferred
                    AND {dim}_sk <> -1) - (SELECT count(DISTINCT {key}) FROM dbo.{table}))""")  # fmt: skip
        # the as-of day's snapshot holds every issue that exists and is not deleted at the as-of instant
        count(
            "daily snapshot differs from live issues",
            """SELECT abs(
            (SELECT count(*) FROM fact.issue_daily
                WHERE snapshot_date_key = to_char((:as_of AT TIME ZONE :tz)::date, 'YYYYMMDD')::integer)
            - (SELECT count(*) FROM dim.issue WHERE issue_sk <> -1 AND valid_from <= :as_of AND valid_to > :as_of
                AND NOT is_deleted AND COALESCE(created_at, valid_from) <= :as_of))""",
            as_of=as_of,
            tz=time_zone,
        )
    return {name: n for name, n in found.items() if n}
