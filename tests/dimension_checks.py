"""Invariants every SCD2 dimension must satisfy, and a comparable picture of dimension contents."""

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
BOOKKEEPING = {"run_id"}


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
