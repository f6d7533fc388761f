"""Nothing the warehouse is configured with, and nothing it runs beside, can hurt it (issue #12).

A quality check cannot write, read a server file, reach staging or control tables, run a second statement or
run forever; a wrongly typed check option or a watermark later than the source's clock stops the run before it
reads; a session whose search_path puts ``dim`` first or whose DateStyle is not ISO changes nothing; each role
can do what it is for and nothing more, and a whole run works as the loader.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import cloned, loaded_template
from dimension_checks import everything
from sqlalchemy.engine import URL

from flows import demo_source, extract, pipeline, roles
from flows.errors import QualityCheckError
from flows.settings import Settings
from flows.sources import SOURCES
from flows.warehouse_flow import warehouse

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
NEXT_DAY = AS_OF + timedelta(days=1)

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


@pytest.fixture(scope="module")
def loaded(server_admin_url: URL) -> Iterator[URL]:
    """A warehouse after one successful run at AS_OF over the seeded demo source, to clone."""
    with loaded_template(server_admin_url, "pmw_hostile_template", AS_OF) as url:
        yield url


@pytest.fixture
def clone(server_admin_url: URL, loaded: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    with cloned(server_admin_url, loaded, monkeypatch) as engine:
        yield engine


def scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def execute(engine: sa.Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement, execution_options={"no_parameters": True})


def watermarks(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM ctl.watermark ORDER BY 1, 2")]


# --- quality checks ------------------------------------------------------------------------------------

# closes the wrapping subqueries, then appends a DELETE: three valid statements (proven below)
SECOND_STATEMENT = "SELECT 1 AS k) AS f) AS g; DELETE FROM dim.review; SELECT * FROM (SELECT * FROM (SELECT 1 AS k"
MOVE_WATERMARKS = """CREATE FUNCTION public.pmw_test_move_watermarks() RETURNS boolean LANGUAGE plpgsql
SECURITY DEFINER AS $$ BEGIN UPDATE ctl.watermark SET cursor_value = '2030-01-01'; RETURN true; END $$"""
ATTACKS = {  # check options, and what refuses it
    "second_statement": ({"kind": "custom_sql", "sql": SECOND_STATEMENT}, "cannot insert multiple commands"),
    # a function owned by the superuser, running with its rights: the read-only transaction still refuses
    "where_writes_watermarks": (
        {"kind": "row_count", "table": "dim.project", "min_rows": 1, "where": "public.pmw_test_move_watermarks()"},
        "read-only transaction",
    ),
    "where_reads_ctl": (
        {
            "kind": "not_null",
            "table": "dim.issue",
            "columns": ["issue_sk"],
            "where": "EXISTS (SELECT 1 FROM ctl.watermark)",
        },
        "permission denied",
    ),
    "reads_staging": ({"kind": "custom_sql", "sql": "SELECT * FROM stg.users"}, "permission denied"),
    "reads_a_server_file": (
        {"kind": "custom_sql", "sql": "SELECT pg_read_file('PG_VERSION') AS content"},
        "permission denied",
    ),
    "turns_read_write": (
        {"kind": "custom_sql", "sql": "SELECT set_config('transaction_read_only', 'off', true) AS x"},
        "read-write",
    ),
    "runs_forever": ({"kind": "custom_sql", "sql": "SELECT 1 AS x FROM pg_sleep(30)"}, "statement timeout"),
}


def _toml(checks: dict[str, dict[str, Any]]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(value(i) for i in v) + "]"
        return repr(v) if isinstance(v, int | float) and not isinstance(v, bool) else '"""' + str(v) + '"""'

    return "\n".join(
        f"[checks.{name}]\n" + "\n".join(f"{k} = {value(v)}" for k, v in options.items()) + "\n"
        for name, options in checks.items()
    )


def test_the_second_statement_attack_is_real_sql_that_deletes(clone: sa.Engine) -> None:
    """Without the one-statement rule the attack's text runs all three statements (rolled back here)."""
    composed = f"SELECT count(*) FROM (SELECT * FROM ({SECOND_STATEMENT}) AS failing) AS failing"
    with clone.connect() as conn:
        conn.exec_driver_sql(composed)  # no parameter: psycopg's simple protocol runs every statement
        assert conn.exec_driver_sql("SELECT count(*) FROM dim.review").scalar() == 0
        conn.rollback()


def test_a_check_cannot_write_read_files_leave_its_role_or_run_long(
    clone: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    execute(clone, MOVE_WATERMARKS)
    checks = tmp_path / "attacks.toml"
    checks.write_text(_toml({name: options for name, (options, _) in ATTACKS.items()}))
    monkeypatch.setenv("PMW_QUALITY_CHECKS", str(checks))
    monkeypatch.setenv("PMW_QUALITY_CHECK_TIMEOUT_SECONDS", "2")
    before, marks = everything(clone), watermarks(clone)
    reviews = scalar(clone, "SELECT count(*) FROM dim.review")
    run_id = scalar(clone, "SELECT max(run_id) FROM ctl.run")

    results = {
        r.check.name: r for r in pipeline.check_quality(pipeline.Context.from_settings(Settings()), run_id, AS_OF)
    }

    for name, (_, refusal) in ATTACKS.items():
        assert results[name].status == "error", (name, results[name])
        assert refusal in (results[name].message or ""), (name, results[name].message)
    assert everything(clone) == before and watermarks(clone) == marks
    assert scalar(clone, "SELECT count(*) FROM dim.review") == reviews > 0
    read_file = results["reads_a_server_file"]  # the file's content was never read, so never stored
    assert read_file.failing_count == 0 and read_file.sample_keys == []
    stored = scalar(clone, "SELECT sample_keys FROM ctl.data_quality_result WHERE check_name = 'reads_a_server_file'")
    assert stored is None
    # the built-in checks still pass beside them: the restrictions do not get in an honest check's way
    assert all(r.status == "pass" for n, r in results.items() if n not in ATTACKS and r.check.severity == "error")


def test_a_wrongly_typed_check_option_stops_the_run_before_it_reads(
    clone: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = tmp_path / "checks.toml"
    checks.write_text(
        '[checks.few_projects]\nkind = "row_count"\ntable = "dim.project"\nmin_rows = 1\nthreshold = "5"\n'
    )
    monkeypatch.setenv("PMW_QUALITY_CHECKS", str(checks))
    marks = watermarks(clone)
    with pytest.raises(QualityCheckError) as refused:
        warehouse(as_of=NEXT_DAY)
    message = str(refused.value)
    assert "few_projects" in message and "threshold = '5'" in message and str(checks) in message
    run = scalar(clone, "SELECT max(run_id) FROM ctl.run")
    assert scalar(clone, "SELECT status FROM ctl.run WHERE run_id = :r", r=run) == "failed"
    assert scalar(clone, "SELECT count(*) FROM ctl.run_source WHERE run_id = :r", r=run) == 0
    assert scalar(clone, "SELECT count(*) FROM ctl.run_step WHERE run_id = :r", r=run) == 0
    assert watermarks(clone) == marks


# --- windows and watermarks ------------------------------------------------------------------------------


def test_a_watermark_later_than_the_source_clock_stops_the_run_and_a_full_refresh_repairs_it(
    clone: sa.Engine,
) -> None:
    execute(clone, "UPDATE ctl.watermark SET cursor_value = '2029-12-31' WHERE source_object = 'issues'")
    marks = watermarks(clone)
    with pytest.raises(extract.WindowOutOfOrder) as refused:
        warehouse(as_of=NEXT_DAY)
    message = str(refused.value)
    assert "issues" in message and "2029-12-31" in message and "--full-refresh --source issues" in message
    run = scalar(clone, "SELECT max(run_id) FROM ctl.run")
    assert scalar(clone, "SELECT count(*) FROM ctl.run_source WHERE run_id = :r", r=run) == 0  # nothing read
    assert watermarks(clone) == marks

    assert warehouse(as_of=NEXT_DAY, full_refresh=True, sources=["issues"])["status"] == "success"
    repaired = scalar(clone, "SELECT max(cursor_value) FROM ctl.watermark WHERE source_object = 'issues'")
    assert repaired <= NEXT_DAY.replace(tzinfo=None) + timedelta(hours=14)  # the source's clock, either zone
    assert warehouse(as_of=NEXT_DAY)["status"] == "success"


@pytest.mark.parametrize("source", [s for s in SOURCES if s.strategy == "cursor"], ids=lambda s: s.name)
def test_every_cursor_source_refuses_a_window_that_would_start_after_it_ends(source: Any) -> None:
    ahead = {(source.name, p.value): datetime(2029, 12, 31) for p in source.watermark_partitions()}
    plan = {"as_of": AS_OF, "lookback": timedelta(hours=24), "source_timezone": "Australia/Sydney",
            "warehouse_dialect": "postgresql"}  # fmt: skip
    with pytest.raises(extract.WindowOutOfOrder, match="later than the source's clock"):
        extract.plan_windows(source, ahead, full_refresh=False, **plan)
    assert all(w.window_from is None for w in extract.plan_windows(source, ahead, full_refresh=True, **plan))


# --- session settings --------------------------------------------------------------------------------------


def test_a_hostile_session_default_changes_nothing(clone: sa.Engine, tmp_path: Path, monkeypatch: Any) -> None:
    name = clone.url.database
    execute(
        clone,
        f'ALTER DATABASE "{name}" SET search_path = dim, fact, pg_catalog, public',
        f"ALTER DATABASE \"{name}\" SET DateStyle = 'SQL, DMY'",
        f"ALTER DATABASE \"{name}\" SET IntervalStyle = 'sql_standard'",
    )
    # a procedure keeps its own search_path even when called from such a session (dim.date shadowed date)
    with sa.create_engine(clone.url, poolclass=sa.pool.NullPool).connect() as conn:
        assert conn.exec_driver_sql("SHOW search_path").scalar() == "dim, fact, pg_catalog, public"
        # (the call's own literals are typed pg_catalog.date: in this session DATE means dim.date)
        conn.exec_driver_sql(
            "CALL warehouse.load_dim_date('2026-01-01'::pg_catalog.date, '2026-01-31'::pg_catalog.date, 7)"
        )
        conn.rollback()
    # a warn check whose sample is a timestamp (psycopg cannot parse a non-ISO one)
    checks = tmp_path / "checks.toml"
    checks.write_text('[checks.sample_times]\nkind = "custom_sql"\nseverity = "warn"\n'
                      'sql = "SELECT valid_from, now() - valid_from AS age FROM dim.issue"\n')  # fmt: skip
    monkeypatch.setenv("PMW_QUALITY_CHECKS", str(checks))
    assert warehouse(as_of=NEXT_DAY)["status"] == "success"
    sample = scalar(clone, "SELECT sample_keys FROM ctl.data_quality_result WHERE check_name = 'sample_times' "
                           "ORDER BY run_id DESC LIMIT 1")  # fmt: skip
    assert re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", sample or ""), sample  # ISO, parsed by psycopg


# --- roles -----------------------------------------------------------------------------------------------------


def _as(engine: sa.Engine, role: str) -> sa.Engine:
    return sa.create_engine(engine.url.set(username=roles.ROLE_NAMES[role]), poolclass=sa.pool.NullPool)


def _can(engine: sa.Engine, sql: str) -> bool:
    with engine.connect() as conn:
        try:
            conn.exec_driver_sql(sql)
        except sa.exc.ProgrammingError as exc:
            assert "permission denied" in str(exc.orig), exc
            return False
        finally:
            conn.rollback()
    return True


def _relations(engine: sa.Engine, *schemas: str) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT table_schema || '.' || table_name FROM information_schema.tables "
                    "WHERE table_schema = ANY(:s) ORDER BY 1"), {"s": list(schemas)}
        )  # fmt: skip
        return [r[0] for r in rows]


def test_each_role_reads_what_it_is_for_and_writes_nothing(clone: sa.Engine) -> None:
    reader, analyst = _as(clone, "reader"), _as(clone, "analyst")
    marts, modelled = _relations(clone, "mart"), _relations(clone, "dim", "fact", "brg")
    private = [r for r in _relations(clone, "stg", "ctl") if r not in roles.ANALYST_CONTROL_TABLES]
    assert marts and modelled and private
    for relation in marts:
        assert _can(reader, f"SELECT * FROM {relation} LIMIT 1"), relation
    for relation in marts + modelled:
        assert _can(analyst, f"SELECT * FROM {relation} LIMIT 1"), relation
    for relation in modelled + private:
        assert not _can(reader, f"SELECT * FROM {relation} LIMIT 1"), relation
    for relation in private:
        assert not _can(analyst, f"SELECT * FROM {relation} LIMIT 1"), relation
    for relation in roles.ANALYST_CONTROL_TABLES:  # granted one by one, for the checks that read them
        assert _can(analyst, f"SELECT * FROM {relation} LIMIT 1") and not _can(reader, f"SELECT * FROM {relation}")
    for engine in (reader, analyst):
        assert not _can(engine, "DELETE FROM fact.issue_daily")
        assert not _can(engine, "CALL warehouse.load_dim_date(DATE '2026-01-01', DATE '2026-01-02', 7)")
        engine.dispose()
    assert scalar(clone, "SELECT count(*) FROM fact.issue_daily") > 0


def test_a_whole_run_works_as_the_loader_which_cannot_change_the_schema(
    clone: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the demo source lives in the warehouse database: the source's owner lets the loader read it
    execute(clone, "GRANT USAGE ON SCHEMA dbo TO pmw_loader", "GRANT SELECT ON ALL TABLES IN SCHEMA dbo TO pmw_loader")
    loader = _as(clone, "loader")
    monkeypatch.setenv("PMW_WAREHOUSE_URL", loader.url.render_as_string(hide_password=False))
    demo_source.advance(clone, days=1)
    assert warehouse(as_of=NEXT_DAY)["status"] == "success"
    run = scalar(clone, "SELECT max(run_id) FROM ctl.run")
    assert scalar(clone, "SELECT count(*) FROM ctl.run_step WHERE run_id = :r AND status = 'success'", r=run) > 20
    assert scalar(clone, "SELECT count(*) FROM fact.issue_daily WHERE run_id = :r", r=run) > 0
    for ddl in ("CREATE TABLE dim.intruder (x int)", "DROP TABLE fact.issue_daily", "DROP SCHEMA mart CASCADE"):
        with loader.connect() as conn, pytest.raises(sa.exc.ProgrammingError, match=r"permission denied|must be owner"):
            conn.exec_driver_sql(ddl)
    loader.dispose()


def test_checks_run_as_the_analyst(clone: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checks = tmp_path / "checks.toml"
    checks.write_text('[checks.who]\nkind = "custom_sql"\nseverity = "warn"\nsql = "SELECT current_user AS who"\n')
    monkeypatch.setenv("PMW_QUALITY_CHECKS", str(checks))
    run_id = scalar(clone, "SELECT max(run_id) FROM ctl.run")
    results = pipeline.check_quality(pipeline.Context.from_settings(Settings()), run_id, AS_OF)
    assert next(r for r in results if r.check.name == "who").sample_keys == [roles.CHECK_ROLE]


# --- quarantine retention ------------------------------------------------------------------------------------


def test_quarantined_content_is_purged_after_the_retention_for_every_source(
    clone: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PMW_QUARANTINE_RETENTION_DAYS", "30")
    run = scalar(clone, "SELECT max(run_id) FROM ctl.run")
    with clone.begin() as conn:
        for source in SOURCES:
            for age_days in (31, 29):
                conn.execute(
                    sa.text("INSERT INTO ctl.quarantine (run_id, source_object, business_key, reason, row_data, "
                            "quarantined_at) VALUES (:r, :s, :k, 'a test row', '{\"email\": \"someone@example.com\"}', "
                            "now() - make_interval(days => :d))"),
                    {"r": run, "s": source.name, "k": f"key-{age_days}", "d": age_days},
                )  # fmt: skip
    assert warehouse(as_of=NEXT_DAY)["status"] == "success"
    with clone.connect() as conn:
        kept = dict(conn.execute(sa.text(
            "SELECT source_object || ' ' || business_key, row_data IS NOT NULL FROM ctl.quarantine "
            "WHERE reason = 'a test row'")).all())  # fmt: skip
    assert kept == {f"{s.name} key-{d}": d == 29 for s in SOURCES for d in (31, 29)}
    latest = scalar(clone, "SELECT max(run_id) FROM ctl.run")
    purged = scalar(clone, "SELECT sum(value) FROM ctl.run_step_meaning WHERE run_id = :r "
                           "AND meaning = 'quarantine_purged'", r=latest)  # fmt: skip
    assert purged == len(SOURCES)
