"""An exact run log: for every step of an initial, a one-day-delta and a no-op run, the rows the run log
records as inserted, updated and deleted in each table equal what the tables themselves saw, counted by
the test's own triggers (statement-level, with transition tables; a TRUNCATE counted before it empties
the table) on every table a run writes, and attributed to the step ``ctl.run_step`` shows running. The
meanings (quarantined, unchanged, SCD2 counts) sit beside them, and `pmw status` and the artifact show both.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from flows import artifacts, demo_source, runs
from flows.settings import Settings
from flows.table_counts import RUN_LOG_TABLES
from flows.warehouse_flow import warehouse

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
COUNTED_SCHEMAS = ("stg", "dim", "fact", "brg", "ctl")

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]

COUNTERS = """
CREATE SCHEMA pmw_test;
CREATE TABLE pmw_test.write (step_name text, table_name text, inserted bigint, updated bigint, deleted bigint);
CREATE FUNCTION pmw_test.running_step() RETURNS text LANGUAGE sql AS $$
    SELECT step_name FROM ctl.run_step WHERE status = 'running' ORDER BY run_step_id DESC LIMIT 1 $$;
CREATE FUNCTION pmw_test.on_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO pmw_test.write SELECT pmw_test.running_step(), TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, count(*), 0, 0
    FROM new_rows; RETURN NULL; END $$;
CREATE FUNCTION pmw_test.on_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO pmw_test.write SELECT pmw_test.running_step(), TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, 0, count(*), 0
    FROM new_rows; RETURN NULL; END $$;
CREATE FUNCTION pmw_test.on_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO pmw_test.write SELECT pmw_test.running_step(), TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, 0, 0, count(*)
    FROM old_rows; RETURN NULL; END $$;
CREATE FUNCTION pmw_test.on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$ DECLARE n bigint; BEGIN
    EXECUTE format('SELECT count(*) FROM %I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME) INTO n;
    INSERT INTO pmw_test.write VALUES (pmw_test.running_step(), TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, 0, 0, n);
    RETURN NULL; END $$;
"""


def install_counters(engine: sa.Engine) -> list[str]:
    """The test's own counters on every table a run may write (all but the run log's records of itself)."""
    with engine.begin() as conn:
        tables = [
            name for name in conn.execute(
                sa.text("SELECT table_schema || '.' || table_name FROM information_schema.tables "
                        "WHERE table_type = 'BASE TABLE' AND table_schema = ANY(:s) ORDER BY 1"),
                {"s": list(COUNTED_SCHEMAS)},
            ).scalars() if name not in RUN_LOG_TABLES
        ]  # fmt: skip
        conn.exec_driver_sql(COUNTERS, execution_options={"no_parameters": True})
        for table in tables:
            conn.exec_driver_sql(f"""
                CREATE TRIGGER pmw_test_ins AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION pmw_test.on_insert();
                CREATE TRIGGER pmw_test_upd AFTER UPDATE ON {table} REFERENCING NEW TABLE AS new_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION pmw_test.on_update();
                CREATE TRIGGER pmw_test_del AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION pmw_test.on_delete();
                CREATE TRIGGER pmw_test_trunc BEFORE TRUNCATE ON {table}
                    FOR EACH STATEMENT EXECUTE FUNCTION pmw_test.on_truncate();""")
    return tables


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


def seen_by_the_tables(engine: sa.Engine) -> dict[tuple[str, str], tuple[int, int, int]]:
    found = rows(engine, """SELECT step_name, table_name, sum(inserted) AS i, sum(updated) AS u, sum(deleted) AS d
        FROM pmw_test.write GROUP BY 1, 2 HAVING sum(inserted) + sum(updated) + sum(deleted) > 0""")  # fmt: skip
    return {(r.step_name, r.table_name): (int(r.i), int(r.u), int(r.d)) for r in found}


def recorded(engine: sa.Engine, run_id: int) -> dict[tuple[str, str], tuple[int, int, int]]:
    found = rows(engine, """SELECT step_name, table_name, rows_inserted, rows_updated, rows_deleted
        FROM ctl.run_step_table WHERE run_id = :r""", r=run_id)  # fmt: skip
    return {(r.step_name, r.table_name): (r.rows_inserted, r.rows_updated, r.rows_deleted) for r in found}


def run_and_compare(engine: sa.Engine, as_of: datetime, label: str) -> int:
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE pmw_test.write")
    result = warehouse(as_of=as_of)
    assert result["status"] == "success", label
    run_id = int(result["run_id"])
    seen, logged = seen_by_the_tables(engine), recorded(engine, run_id)
    assert None not in {step for step, _ in seen}, f"{label}: a write outside every step"
    for key in sorted(set(seen) | set(logged)):
        assert logged.get(key) == seen.get(key), f"{label} run: {key} logged {logged.get(key)}, seen {seen.get(key)}"
    # each step's totals are the sums over its tables
    for step in rows(engine, "SELECT step_name, rows_inserted, rows_updated, rows_deleted FROM ctl.run_step "
                             "WHERE run_id = :r", r=run_id):  # fmt: skip
        mine = [v for (s, _), v in logged.items() if s == step.step_name]
        assert (step.rows_inserted, step.rows_updated, step.rows_deleted) == tuple(
            sum(v[i] for v in mine) for i in range(3)
        ), f"{label}: {step.step_name}"
    return run_id


def meanings(engine: sa.Engine, run_id: int) -> dict[tuple[str, str], int]:
    found = rows(engine, "SELECT step_name, meaning, value FROM ctl.run_step_meaning WHERE run_id = :r", r=run_id)
    return {(r.step_name, r.meaning): r.value for r in found}


def test_the_run_log_records_exactly_what_each_step_wrote(upgraded: sa.Engine) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    tables = install_counters(upgraded)
    assert {"stg.issues", "dim.issue", "dim.issue_key", "fact.issue_daily", "ctl.quarantine"} <= set(tables)

    initial = run_and_compare(upgraded, AS_OF, "initial")
    logged = recorded(upgraded, initial)
    # the snapshot's durable keys are its own step's rows too; the checks' results are the checks' rows
    assert logged[("warehouse.load_fact_issue_daily", "dim.issue_key")][0] > 9_000
    checks = rows(upgraded, "SELECT count(*) AS n FROM ctl.data_quality_result WHERE run_id = :r", r=initial)[0].n
    assert logged[("quality checks", "ctl.data_quality_result")] == (checks, 0, 0)
    assert logged[("pull issues", "stg.issues")][0] >= 10_000
    read = {r.step_name: r.rows_read for r in rows(upgraded, "SELECT step_name, rows_read FROM ctl.run_step "
                                                             "WHERE run_id = :r", r=initial)}  # fmt: skip
    assert all(read[step] > 0 for step in read if step.startswith(("pull ", "warehouse.load_fact")))
    assert read["quality checks"] == checks

    demo_source.advance(upgraded, days=1)
    delta = run_and_compare(upgraded, demo_source.clock(upgraded).replace(tzinfo=UTC), "one-day delta")
    meant = meanings(upgraded, delta)
    quarantined = rows(upgraded, "SELECT source_object, count(*) AS n FROM ctl.quarantine WHERE run_id = :r "
                                 "GROUP BY 1", r=delta)  # fmt: skip
    for source in quarantined:
        assert meant[(f"pull {source.source_object}", "quarantined")] == source.n
    assert meant[("pull issues", "unchanged")] > 0  # the look-back re-read rows loaded before
    assert meant[("warehouse.load_dim_issue", "new_versions")] > 0
    for dimension in ("issue", "issue_analytics", "service"):  # the meanings account for the physical rows
        step = f"warehouse.load_dim_{dimension}"
        inserted, updated, _ = recorded(upgraded, delta).get((step, f"dim.{dimension}"), (0, 0, 0))
        assert inserted == sum(meant.get((step, m), 0) for m in ("new_keys", "new_versions", "deleted_at_source"))
        assert updated == meant.get((step, "versions_closed"), 0) + meant.get((step, "inferred_completed"), 0)

    noop = run_and_compare(upgraded, demo_source.clock(upgraded).replace(tzinfo=UTC), "no-op")
    assert not {key for key in recorded(upgraded, noop) if key[1].startswith(("dim.", "fact.", "brg."))}

    # pmw status and the run's artifact show the tables and meanings
    out = io.StringIO()
    with redirect_stdout(out):
        runs.print_run(Settings(), delta)
    shown = out.getvalue()
    assert "dim.issue +" in shown and "new versions" in shown and "stg.issues +" in shown
    report = artifacts.run_report(upgraded, initial)
    assert "dim.issue_key +" in report and "ctl.data_quality_result +" in report


def test_procedures_take_what_changed_from_the_run_log_not_from_step_names(upgraded: sa.Engine) -> None:
    """Renaming every step in ctl.run_step (as a new step name in Python would) resets no loader: the next
    run recomputes only what changed since the last committed fact phase, which the run log hands over."""
    from flows.database import procs_dir
    from flows.facts import FACT_PROCEDURES

    for dialect in ("postgresql", "mssql"):  # no procedure reads the run log itself
        for procedure in FACT_PROCEDURES:
            text = (procs_dir(dialect) / "warehouse" / f"{procedure.split('.')[1]}.sql").read_text()
            body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
            assert "ctl." not in body, f"{dialect} {procedure} reads ctl"
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    assert warehouse(as_of=AS_OF)["status"] == "success"
    with upgraded.begin() as conn:
        conn.execute(sa.text("UPDATE ctl.run_step SET step_name = step_name || ' (renamed)'"))
    again = warehouse(as_of=AS_OF)
    computed = {
        r.step_name: r.rows_read
        for r in rows(upgraded, "SELECT step_name, rows_read FROM ctl.run_step WHERE run_id = :r", r=again["run_id"])
        if r.step_name in FACT_PROCEDURES
    }
    # the review snapshot grades every review at every as-of, and the month facts take the as-of month's state
    # at the as-of again (its rows, no more); nothing else had anything to recompute
    as_of_month = "SELECT count(*) FROM {} WHERE month_date_key = (SELECT max(month_date_key) FROM {})"
    for step, table in (("warehouse.load_fact_service_monthly", "fact.service_monthly"),
                        ("warehouse.load_fact_project_monthly", "fact.project_monthly")):  # fmt: skip
        assert computed.pop(step) == rows(upgraded, as_of_month.format(table, table))[0][0], step
    assert {step: n for step, n in computed.items() if n and step != "warehouse.load_fact_review"} == {}
    assert len(computed) == len(FACT_PROCEDURES) - 2
