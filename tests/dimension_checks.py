"""Invariants every SCD2 dimension must satisfy, and comparable pictures of dimension (and whole-warehouse) contents."""

from __future__ import annotations

import sqlalchemy as sa

DIMENSION_KEYS = {
    "client": ["client_id"],
    "project_type": ["type_id"],
    "app_user": ["user_id"],
    "project": ["project_id"],
    "issue_category": ["category_id"],
    "status_map": ["source_system", "raw_status"],
    "priority_map": ["source_system", "raw_priority"],
    "service": ["service_id"],
    "review": ["review_id"],
    "issue": ["source_system", "source_project_id", "source_issue_id"],
    "issue_analytics": ["source_system", "source_issue_id"],
}
# load bookkeeping, not facts: the run that last wrote a row, and (fact.review) that run's as-of date
BOOKKEEPING = {"run_id", "as_of_date_key"}


def scd2_violations(engine: sa.Engine) -> dict[str, dict[str, int]]:
    """Per dimension: keys without exactly one current row, overlaps or gaps, bad open ends."""
    found: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for name, keys in DIMENSION_KEYS.items():
            key_list = ", ".join(keys)
            checks = {
                "current_rows_not_one": f"""SELECT count(*) FROM (SELECT {key_list} FROM dim.{name}
                    GROUP BY {key_list} HAVING count(*) FILTER (WHERE is_current) <> 1) AS k""",
                "gaps_or_overlaps": f"""SELECT count(*) FROM (SELECT valid_to, lead(valid_from) OVER (
                    PARTITION BY {key_list} ORDER BY valid_from) AS next_from FROM dim.{name}) AS v
                    WHERE next_from IS NOT NULL AND next_from <> valid_to""",
                "empty_versions": f"SELECT count(*) FROM dim.{name} WHERE valid_to <= valid_from",
                "current_not_open": f"""SELECT count(*) FROM dim.{name}
                    WHERE is_current <> (valid_to = TIMESTAMPTZ '9999-12-31 00:00:00+00')""",
            }
            bad = {check: int(conn.exec_driver_sql(sql).scalar() or 0) for check, sql in checks.items()}
            bad = {check: n for check, n in bad.items() if n}
            if bad:
                found[name] = bad
    return found


def dimension_contents(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every dimension row without surrogate keys and load bookkeeping, sorted: comparable across runs."""
    picture = {}
    with engine.connect() as conn:
        for name in DIMENSION_KEYS:
            columns = [
                c
                for c in conn.execute(
                    sa.text(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'dim' "
                        "AND table_name = :t ORDER BY ordinal_position"
                    ),
                    {"t": name},
                ).scalars()
                if c != f"{name}_sk" and c not in BOOKKEEPING
            ]
            rows = conn.exec_driver_sql(f"SELECT {', '.join(columns)} FROM dim.{name}").all()
            picture[name] = sorted((tuple(r) for r in rows), key=repr)
    return picture


def _version_of(dimension: str, column: str) -> str:
    """A SQL expression naming the dimension version a surrogate key points at by its business key and start."""
    keys = ", ".join(f"d.{k}" for k in DIMENSION_KEYS[dimension])
    return f"(SELECT ROW({keys}, d.valid_from)::text FROM dim.{dimension} AS d WHERE d.{dimension}_sk = f.{column})"


def warehouse_contents(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every dim, fact and brg row, comparable across warehouses built from the same source.

    Surrogate and durable keys are numbered by load order (a rolled-back step consumes numbers), so
    each is replaced by what it stands for: a dimension version by its business key and valid_from, an
    issue key by the issue's identity. Load bookkeeping (run ids) is left out.
    """
    picture = dimension_contents(engine)
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("""SELECT table_schema || '.' || table_name AS qualified, column_name FROM
            information_schema.columns WHERE table_schema IN ('fact', 'brg') ORDER BY 1, ordinal_position""")
        )
        tables: dict[str, list[str]] = {}
        for row in found:
            tables.setdefault(row.qualified, []).append(row.column_name)
        for table, columns in tables.items():
            selected = []
            for column in columns:
                if column in BOOKKEEPING:
                    continue
                if column == "issue_key":
                    selected.append("(SELECT ROW(k.source_system, k.source_project_id, k.source_issue_id)::text "
                                    "FROM dim.issue_key AS k WHERE k.issue_key = f.issue_key)")  # fmt: skip
                elif column.endswith("_sk") and column.removesuffix("_sk") in DIMENSION_KEYS:
                    selected.append(_version_of(column.removesuffix("_sk"), column))
                else:
                    selected.append(f"f.{column}")
            rows = conn.exec_driver_sql(f"SELECT {', '.join(selected)} FROM {table} AS f").all()
            picture[table] = sorted((tuple(r) for r in rows), key=repr)
    return picture


def mart_contents(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every mart view (what BI tools read), sorted: comparable across warehouses."""
    picture = {}
    with engine.connect() as conn:
        views = conn.execute(
            sa.text("SELECT table_name FROM information_schema.views WHERE table_schema = 'mart' ORDER BY 1")
        ).scalars()
        for view in list(views):
            rows = conn.exec_driver_sql(f"SELECT * FROM mart.{view}").all()
            picture[f"mart.{view}"] = sorted((tuple(r) for r in rows), key=repr)
    return picture


def everything(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every dim, fact and brg table and every mart view, comparable across warehouses."""
    return {**warehouse_contents(engine), **mart_contents(engine)}
