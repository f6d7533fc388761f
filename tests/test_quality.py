"""Data-quality checks: every kind fails on data crafted to break it and passes once the data is clean;
checks come from data (built-in TOML plus the user's file); an error-severity failure fails the run
after every result is recorded, and the run publishes its report as a Prefect artifact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flows import artifacts, quality
from flows.errors import QualityCheckError, QualityGateFailed

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


def execute(engine: sa.Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def check(engine: sa.Engine, run_id: int = 7, **options: Any) -> quality.CheckResult:
    parsed = quality.parse_check("crafted", options, "the test")
    return quality.run_checks(engine, [parsed], AS_OF, run_id)[0]


SCD2_TABLE = """CREATE TABLE qa.d (k integer, valid_from timestamptz, valid_to timestamptz, is_current boolean,
    is_deleted boolean DEFAULT false, run_id bigint DEFAULT 1)"""
CLEAN_HISTORY = """INSERT INTO qa.d (k, valid_from, valid_to, is_current) VALUES
    (1, '2026-01-01', '2026-02-01', false), (1, '2026-02-01', '9999-12-31', true),
    (2, '2026-01-05', '9999-12-31', true)"""
FIRST = "WHERE valid_from = '2026-01-01'"  # key 1's first version

# kind options, the SQL that builds crafted data, the failing units expected, a sample, the SQL that repairs it
CASES = {
    "not_null": (
        {"kind": "not_null", "table": "qa.t", "columns": ["v"], "sample_columns": ["id"]},
        ["CREATE TABLE qa.t (id integer, v text)", "INSERT INTO qa.t VALUES (1, 'a'), (2, NULL), (3, NULL)"],
        2, "2", ["UPDATE qa.t SET v = 'b'"],
    ),
    "unique": (
        {"kind": "unique", "table": "qa.t", "columns": ["id"]},
        ["CREATE TABLE qa.t (id integer)", "INSERT INTO qa.t VALUES (1), (1), (1), (2)"],
        1, "1, 3", ["DELETE FROM qa.t WHERE ctid NOT IN (SELECT min(ctid) FROM qa.t GROUP BY id)"],
    ),
    "relationships": (
        {"kind": "relationships", "table": "qa.child", "columns": ["pid"], "to_table": "qa.parent",
         "to_columns": ["id"]},
        ["CREATE TABLE qa.parent (id integer)", "CREATE TABLE qa.child (pid integer)",
         "INSERT INTO qa.parent VALUES (1), (2)", "INSERT INTO qa.child VALUES (1), (2), (3), (3), (NULL)"],
        1, "3", ["INSERT INTO qa.parent VALUES (3)"],
    ),
    # raw values meet the map trimmed and case-insensitively; the units are the rows, sampled per value
    "relationships_rows_ignoring_case_and_spaces": (
        {"kind": "relationships", "table": "qa.child", "columns": ["sys", "v"], "to_table": "qa.parent",
         "to_columns": ["sys", "v"], "units": "rows", "ignore_case_and_spaces": ["v"]},
        ["CREATE TABLE qa.parent (sys text, v text)", "CREATE TABLE qa.child (sys text, v text)",
         "INSERT INTO qa.parent VALUES ('R', 'solved'), ('R', 'Open')",
         "INSERT INTO qa.child VALUES ('R', 'Solved'), ('R', ' SOLVED '), ('R', 'open'), ('R', 'frob'), "
         "('R', 'frob'), ('R', 'Frob'), ('X', 'solved'), ('R', NULL)"],
        4, "R, frob: 2 rows", ["INSERT INTO qa.parent VALUES ('R', 'FROB '), ('X', 'Solved')"],
    ),
    "relationships_rows_exact": (
        {"kind": "relationships", "table": "qa.child", "columns": ["pid"], "to_table": "qa.parent",
         "to_columns": ["id"], "units": "rows"},
        ["CREATE TABLE qa.parent (id integer)", "CREATE TABLE qa.child (pid integer)",
         "INSERT INTO qa.parent VALUES (1)", "INSERT INTO qa.child VALUES (1), (3), (3), (4), (NULL)"],
        3, "3: 2 rows", ["INSERT INTO qa.parent VALUES (3), (4)"],
    ),
    "accepted_values": (
        {"kind": "accepted_values", "table": "qa.t", "columns": ["v"], "values": ["a", "b"]},
        ["CREATE TABLE qa.t (v text)", "INSERT INTO qa.t VALUES ('a'), ('b'), ('z'), ('z'), ('y')"],
        2, "z", ["DELETE FROM qa.t WHERE v IN ('y', 'z')"],
    ),
    "row_count": (
        {"kind": "row_count", "table": "qa.t", "min_rows": 3, "max_rows": 4},
        ["CREATE TABLE qa.t (v text)", "INSERT INTO qa.t VALUES ('a'), ('b')"],
        1, "2", ["INSERT INTO qa.t VALUES ('c')"],
    ),
    "freshness": (
        {"kind": "freshness", "table": "qa.t", "columns": ["changed_at"], "max_age_hours": 2},
        ["CREATE TABLE qa.t (changed_at timestamptz)", "INSERT INTO qa.t VALUES ('2026-10-31 21:00+00')"],
        1, "2026-10-31 21:00:00+00:00", ["INSERT INTO qa.t VALUES ('2026-10-31 23:00+00')"],
    ),
    "scd2_two_current_rows": (
        {"kind": "scd2", "table": "qa.d", "columns": ["k"]},
        [SCD2_TABLE, CLEAN_HISTORY, "UPDATE qa.d SET is_current = true, valid_to = '9999-12-31' " + FIRST],
        2, "1, 2026-01-01 00:00:00+00:00", ["UPDATE qa.d SET is_current = false, valid_to = '2026-02-01' " + FIRST],
    ),
    "scd2_gap": (
        {"kind": "scd2", "table": "qa.d", "columns": ["k"]},
        [SCD2_TABLE, CLEAN_HISTORY, "UPDATE qa.d SET valid_to = '2026-01-20' " + FIRST],
        1, "1, 2026-01-01 00:00:00+00:00", ["UPDATE qa.d SET valid_to = '2026-02-01' " + FIRST],
    ),
    "scd2_overlap": (
        {"kind": "scd2", "table": "qa.d", "columns": ["k"]},
        [SCD2_TABLE, CLEAN_HISTORY, "UPDATE qa.d SET valid_to = '2026-03-01' " + FIRST],
        1, "1, 2026-01-01 00:00:00+00:00", ["UPDATE qa.d SET valid_to = '2026-02-01' " + FIRST],
    ),
    "scd2_no_current_row": (
        {"kind": "scd2", "table": "qa.d", "columns": ["k"]},
        [SCD2_TABLE, CLEAN_HISTORY, "UPDATE qa.d SET is_current = false, valid_to = '2026-03-01' WHERE k = 2"],
        1, "2, 2026-01-05 00:00:00+00:00", ["UPDATE qa.d SET is_current = true, valid_to = '9999-12-31' WHERE k = 2"],
    ),
    "scd2_empty_version": (
        {"kind": "scd2", "table": "qa.d", "columns": ["k"]},
        [SCD2_TABLE, CLEAN_HISTORY,
         "INSERT INTO qa.d (k, valid_from, valid_to, is_current) VALUES (3, '2026-01-01', '2026-01-01', false), "
         "(3, '2026-01-01', '9999-12-31', true)"],
        1, "3, 2026-01-01 00:00:00+00:00", ["DELETE FROM qa.d WHERE k = 3 AND NOT is_current"],
    ),
    "custom_sql": (
        {"kind": "custom_sql", "sql": "SELECT id FROM qa.t WHERE v = 'bad' AND changed_at < :as_of"},
        ["CREATE TABLE qa.t (id integer, v text, changed_at timestamptz)",
         "INSERT INTO qa.t VALUES (1, 'ok', '2026-10-01'), (2, 'bad', '2026-10-01'), (3, 'bad', '2026-12-01')"],
        1, "2", ["UPDATE qa.t SET v = 'ok' WHERE id = 2"],
    ),
}  # fmt: skip


@pytest.fixture
def qa(engine: sa.Engine) -> sa.Engine:
    execute(engine, "CREATE SCHEMA qa")
    return engine


@pytest.mark.parametrize("case", list(CASES))
def test_every_kind_fails_on_crafted_data_and_passes_on_clean_data(qa: sa.Engine, case: str) -> None:
    options, crafted, failing, sample, repair = CASES[case]
    execute(qa, *crafted)
    failed = check(qa, **options)
    assert (failed.status, failed.failing_count) == ("fail", failing), failed
    assert sample in failed.sample_keys, failed.sample_keys
    assert failed.message == f"{failing} failing (threshold 0)"
    execute(qa, *repair)
    passed = check(qa, **options)
    assert (passed.status, passed.failing_count, passed.sample_keys) == ("pass", 0, [])


def test_a_threshold_tolerates_that_many_failing_units(qa: sa.Engine) -> None:
    execute(qa, *CASES["not_null"][1])
    options = CASES["not_null"][0]
    assert check(qa, **options, threshold=2).status == "pass"
    assert check(qa, **options, threshold=1).status == "fail"


def test_current_only_and_changed_keys_only_limit_what_is_checked(qa: sa.Engine) -> None:
    execute(
        qa, SCD2_TABLE, CLEAN_HISTORY,
        "CREATE TABLE qa.parent (id integer, is_current boolean, is_deleted boolean)",
        "INSERT INTO qa.parent VALUES (1, true, false), (2, true, true), (3, false, false)",
        "UPDATE qa.d SET valid_to = '2026-01-20' " + FIRST,  # a gap in key 1, written by run 1
    )  # fmt: skip
    relationship = {"kind": "relationships", "table": "qa.d", "columns": ["k"], "to_table": "qa.parent",
                    "to_columns": ["id"]}  # fmt: skip
    assert check(qa, **relationship).status == "pass"  # keys 1 and 2 exist in some version of the parent
    live = check(qa, **relationship, to_current_only=True)
    assert (live.failing_count, live.sample_keys) == (1, ["2"])  # parent 2 is deleted
    assert check(qa, **relationship, to_current_only=True, current_only=True, where="k <> 2").status == "pass"
    scd2 = {"kind": "scd2", "table": "qa.d", "columns": ["k"], "changed_keys_only": True}
    assert check(qa, run_id=2, **scd2).status == "pass"  # run 2 wrote nothing
    assert check(qa, run_id=1, **scd2).failing_count == 1


def test_a_check_that_cannot_run_is_an_error_not_a_pass(qa: sa.Engine) -> None:
    result = check(qa, kind="not_null", table="qa.missing", columns=["v"])
    assert result.status == "error" and result.blocks_run
    assert "qa.missing" in (result.message or "")
    # the other checks of the same run still run (each in its own savepoint)
    execute(qa, *CASES["row_count"][1])
    broken = quality.parse_check("broken", {"kind": "custom_sql", "sql": "SELECT nonsense"}, "the test")
    fine = quality.parse_check("fine", CASES["row_count"][0] | {"min_rows": 1}, "the test")
    assert [r.status for r in quality.run_checks(qa, [broken, fine], AS_OF, 1)] == ["error", "pass"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "nonsense", "table": "s.t"}, "kind 'nonsense' is not one of"),
        ({"kind": "unique", "table": "s.t"}, "option columns is required"),
        ({"kind": "unique", "table": "s.t", "columns": ["a"], "severity": "fatal"}, "option severity = 'fatal'"),
        ({"kind": "unique", "table": "s.t", "columns": ["a"], "colums": ["b"]}, "unknown option colums"),
        ({"kind": "unique", "table": "s.t", "columns": ["a"], "threshold": -1}, "option threshold = -1: input should"),
        # strict types: a quoted number is not a number (it parsed, then crashed the checks step)
        ({"kind": "unique", "table": "s.t", "columns": ["a"], "threshold": "5"}, "option threshold = '5': input"),
        ({"kind": "not_null", "table": "dim.issue; DROP", "columns": ["a"]}, "option table = 'dim.issue; DROP'"),
        ({"kind": "not_null", "table": "s.t", "columns": ["a) OR (1=1"]}, "must be a column name"),
        ({"kind": "row_count", "table": "s.t"}, "needs min_rows or max_rows"),
        ({"kind": "freshness", "table": "s.t", "columns": ["a"], "max_age_hours": "6"}, "max_age_hours = '6'"),
        ({"kind": "custom_sql", "sql": "SELECT 1", "where": "x"}, "unknown option where"),
        ({"kind": "accepted_values", "table": "s.t", "columns": ["a", "b"], "values": ["x"]}, "option columns"),
        (
            {
                "kind": "relationships",
                "table": "s.t",
                "columns": ["a"],
                "to_table": "s.p",
                "to_columns": ["a"],
                "units": "issues",
            },
            "option units = 'issues'",
        ),
        (
            {
                "kind": "relationships",
                "table": "s.t",
                "columns": ["a"],
                "to_table": "s.p",
                "to_columns": ["a"],
                "ignore_case_and_spaces": ["b"],
            },
            "ignore_case_and_spaces names ['b'], which are not in columns",
        ),
    ],
)
def test_a_bad_declaration_is_refused_with_what_is_allowed(options: dict[str, Any], message: str) -> None:
    with pytest.raises(QualityCheckError, match=r"quality check 'x' in f\.toml") as caught:
        quality.parse_check("x", options, "f.toml")
    assert message in str(caught.value)


def test_user_checks_add_to_override_and_disable_the_built_in_ones(tmp_path: Path) -> None:
    built_in = {c.name: c for c in quality.load_checks()}
    assert {"status_map_coverage", "scd2_issue", "issue_freshness"} <= set(built_in)
    user_file = tmp_path / "checks.toml"
    user_file.write_text(
        '[checks.issue_freshness]\nkind = "freshness"\ntable = "dim.issue"\ncolumns = ["valid_from"]\n'
        'max_age_hours = 6\nseverity = "error"\n\n'
        "[checks.scd2_review]\nenabled = false\n\n"  # turning one off needs no other option
        '[checks.no_test_projects]\nkind = "custom_sql"\nsql = "SELECT project_id FROM dim.project '
        "WHERE project_name LIKE 'TEST%'\"\n"
    )
    mine = {c.name: c for c in quality.load_checks(user_file)}
    assert mine["issue_freshness"].max_age_hours == 6 and mine["issue_freshness"].severity == "error"
    assert "scd2_review" not in mine and "no_test_projects" in mine
    assert len(mine) == len(built_in)  # one added, one disabled
    user_file.write_text("[checks.oops\n")
    with pytest.raises(QualityCheckError, match="cannot read quality checks from"):
        quality.load_checks(user_file)


# --- through the flow --------------------------------------------------------------------------------


def _results(engine: sa.Engine, run_id: int) -> dict[str, sa.Row[Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM ctl.data_quality_result WHERE run_id = :r"), {"r": run_id})
        return {row.check_name: row for row in rows}


@pytest.mark.usefixtures("prefect_harness")
def test_an_unmapped_status_fails_its_check_by_name_and_the_run_after_everything_is_recorded(
    upgraded: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows import demo_source
    from flows.warehouse_flow import warehouse

    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    first = warehouse(as_of=AS_OF)
    clean = _results(upgraded, first["run_id"])
    assert len(clean) == len(quality.load_checks())
    assert {name: r.status for name, r in clean.items() if r.severity == "error" and r.status != "pass"} == {}
    unresolved = clean["issue_project_resolved"]  # the demo's tracker projects that match no PM project
    assert unresolved.failing_count > 0 and not unresolved.sample_keys.startswith("?")  # not the unknown member

    execute(
        upgraded,
        """UPDATE dbo.acc_issues SET status = 'Frobnicated', updated_at = '2026-10-31 20:00'
        WHERE acc_issue_id IN (SELECT acc_issue_id FROM dbo.acc_issues ORDER BY acc_issue_id LIMIT 3)""",
    )
    with pytest.raises(QualityGateFailed, match="status_map_coverage"):
        warehouse(as_of=AS_OF + timedelta(hours=1))
    with upgraded.connect() as conn:
        run = conn.execute(sa.text("SELECT run_id, status, error_text FROM ctl.run ORDER BY run_id DESC LIMIT 1")).one()
        moved = conn.execute(
            sa.text("SELECT count(*) FROM ctl.run_source WHERE run_id = :r AND watermark_after IS NOT NULL"),
            {"r": run.run_id},
        )
        assert moved.scalar() == 4  # the loads committed, so the watermarks were settled with them
    assert run.status == "failed" and "status_map_coverage" in run.error_text
    failed = _results(upgraded, run.run_id)
    assert len(failed) == len(clean)  # every check ran and was recorded, not just up to the first failure
    coverage = failed["status_map_coverage"]
    # it counts the issues (three carry the status), and names the status with its issue count
    assert (coverage.status, coverage.severity, coverage.failing_count) == ("fail", "error", 3)
    assert coverage.sample_keys == "ACC, Frobnicated: 3 rows"
    assert _results(upgraded, first["run_id"]) == clean  # results are kept across runs
    report = artifacts.run_report(upgraded, run.run_id)
    assert "| status_map_coverage | error | fail | 3 | 0 | ACC, Frobnicated: 3 rows |" in report
    assert f"# Warehouse run {run.run_id}: failed" in report
    # what needs attention comes first: the failures, then the steps, then the passes
    assert report.index("## Failed checks") < report.index("## Steps") < report.index("## Checks that passed")
    assert report.index("status_map_coverage") < report.index("| scd2_issue |")

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        published = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[artifacts.ARTIFACT_KEY]))
        )
    assert any(f"# Warehouse run {run.run_id}: failed" in str(a.data) for a in published)
    assert any(f"# Warehouse run {first['run_id']}: success" in str(a.data) for a in published)

    from flows.cli import main

    capsys.readouterr()
    assert main(["dq"]) == 0
    shown = capsys.readouterr().out
    assert f"quality checks of run {run.run_id}" in shown
    assert shown.index("status_map_coverage") < shown.index("scd2_issue")  # failures first
    assert "failing the run: status_map_coverage" in shown
    assert main(["dq", "--run", str(first["run_id"])]) == 0
    assert "failing the run" not in capsys.readouterr().out
    assert main(["dq", "--run", "999"]) == 1


# --- every built-in check, on a loaded demo warehouse -------------------------------------------------

FIRST_ISSUE = "(SELECT min(issue_sk) FROM dim.issue WHERE issue_sk > 0)"
ONE_FACT_ROW = "(snapshot_date_key, issue_key) = (SELECT snapshot_date_key, issue_key FROM fact.issue_daily LIMIT 1)"


def _no_current_row(table: str) -> str:
    return f"UPDATE dim.{table} SET is_current = false WHERE {table}_sk = (SELECT min({table}_sk) FROM dim.{table} WHERE {table}_sk > 0)"  # noqa: E501


# check name: (SQL that makes clean data of the demo's deliberate gaps, or None; SQL that breaks it)
BREAKS = {
    "service_claimed_above_fee": (
        None, "UPDATE dim.service SET claimed_to_date = agreed_fee + 1 WHERE service_sk = (SELECT min(service_sk) "
        "FROM dim.service WHERE service_sk > 0 AND is_current AND NOT is_deleted AND agreed_fee IS NOT NULL)"),
    "fact_monthly_measures_are_numbers": (
        None, "UPDATE fact.service_monthly SET earned_value = 'NaN' "
        "WHERE service_id = (SELECT min(service_id) FROM fact.service_monthly)"),
    "local_times_resolved": (
        "DELETE FROM ctl.local_time_resolution",
        "INSERT INTO ctl.local_time_resolution (run_id, source_object, business_key, column_name, local_value, "
        "time_zone, resolved_at, resolution) SELECT max(run_id), 'issues', 'Revizto|1|1', 'created_at', "
        "'2026-04-05 02:30', 'Australia/Sydney', '2026-04-04 15:30+00', "
        "'ambiguous (repeated hour): the first occurrence' FROM ctl.run"),
    **{f"scd2_{name}": (None, _no_current_row(name)) for name in (
        "client", "project_type", "app_user", "project", "issue_category", "status_map", "priority_map", "service",
        "review", "issue", "issue_analytics")},
    "status_map_coverage": (None, f"UPDATE dim.issue SET raw_status = 'Frobnicated' WHERE issue_sk = {FIRST_ISSUE}"),
    "status_map_conflicts": (
        None, "INSERT INTO dim.status_map (source_system, raw_status, normalized_status, is_closed, is_deleted, "
        "row_hash, valid_from, valid_to, is_current, is_inferred) VALUES ('Revizto', ' SOLVED', 'Open', false, false, "
        "0, '2026-01-01', '9999-12-31', true, false)"),
    "priority_map_conflicts": (
        None, "INSERT INTO dim.priority_map (source_system, raw_priority, normalized_priority, is_deleted, row_hash, "
        "valid_from, valid_to, is_current, is_inferred) VALUES ('ACC', 'major ', 'Low', false, 0, '2026-01-01', "
        "'9999-12-31', true, false)"),
    "fact_issue_daily_analytics": (
        None, f"UPDATE fact.issue_daily SET issue_analytics_sk = 999999999 WHERE {ONE_FACT_ROW}"),
    "priority_map_coverage": (
        "UPDATE dim.issue AS i SET raw_priority = NULL WHERE NOT EXISTS (SELECT 1 FROM dim.priority_map AS m "
        "WHERE m.source_system = i.source_system AND m.raw_priority = i.raw_priority)",
        f"UPDATE dim.issue SET raw_priority = 'Urgent!!' WHERE issue_sk = {FIRST_ISSUE}",
    ),
    "issue_project_exists": (None, f"UPDATE dim.issue SET project_id = 999999 WHERE issue_sk = {FIRST_ISSUE}"),
    "service_project_exists": (None, "UPDATE dim.service SET project_id = 999999 WHERE service_sk = 1"),
    "review_service_exists": (None, "UPDATE dim.review SET service_id = 999999 WHERE review_sk = 1"),
    "issue_source_system": (None, f"UPDATE dim.issue SET source_system = 'Jira' WHERE issue_sk = {FIRST_ISSUE}"),
    "issue_project_resolved": (
        "UPDATE dim.issue SET project_id = 1 WHERE project_id IS NULL AND issue_sk <> -1",
        f"UPDATE dim.issue SET project_id = NULL WHERE issue_sk = {FIRST_ISSUE}",
    ),
    "projects_loaded": (None, "DELETE FROM dim.project WHERE project_sk <> -1"),
    "issue_freshness": (None, "UPDATE dim.issue SET valid_from = '2000-01-01' WHERE valid_from > '2026-10-01'"),
    "fact_issue_daily_issue": (None, f"UPDATE fact.issue_daily SET issue_sk = 999999999 WHERE {ONE_FACT_ROW}"),
    "fact_issue_daily_project": (None, f"UPDATE fact.issue_daily SET project_sk = 999999999 WHERE {ONE_FACT_ROW}"),
    "fact_issue_daily_status": (None, f"UPDATE fact.issue_daily SET status_map_sk = 999999 WHERE {ONE_FACT_ROW}"),
    "fact_issue_daily_dates": (None, f"UPDATE fact.issue_daily SET created_date_key = 19000101 WHERE {ONE_FACT_ROW}"),
    "fact_issue_daily_open_xor_closed": (None, f"UPDATE fact.issue_daily SET is_closed = is_open WHERE {ONE_FACT_ROW}"),
    "fact_issue_event_issue": (
        None, "UPDATE fact.issue_event SET issue_sk = 999999999 WHERE issue_key = (SELECT min(issue_key) "
        "FROM fact.issue_event)"),
    "brg_issue_category_category": (
        None, "UPDATE brg.issue_category SET issue_category_sk = 999999 WHERE issue_key = (SELECT min(issue_key) "
        "FROM brg.issue_category)"),
    "fact_review_event_review": (
        None, "UPDATE fact.review_event SET review_sk = 999999999 WHERE review_id = (SELECT min(review_id) "
        "FROM fact.review_event)"),
    "brg_review_issue_issue": (
        None, "UPDATE brg.review_issue SET issue_key = 999999999 WHERE (review_id, issue_key) = (SELECT review_id, "
        "issue_key FROM brg.review_issue ORDER BY review_id, issue_key LIMIT 1)"),
    "fact_service_monthly_service": (
        None, "UPDATE fact.service_monthly SET service_sk = 999999999 WHERE service_id = (SELECT min(service_id) "
        "FROM fact.service_monthly)"),
    "fact_service_monthly_variance": (
        None, "UPDATE fact.service_monthly SET variance = variance + 1 WHERE service_id = (SELECT min(service_id) "
        "FROM fact.service_monthly)"),
    "fact_project_monthly_counts": (
        None, "UPDATE fact.project_monthly SET issues_open = issues_open + 1 "
        "WHERE project_id = (SELECT min(project_id) FROM fact.project_monthly)"),
    "fact_issue_daily_grain": (
        None, "ALTER TABLE fact.issue_daily DROP CONSTRAINT pk_issue_daily; INSERT INTO fact.issue_daily "
        "SELECT * FROM fact.issue_daily WHERE issue_key = (SELECT min(issue_key) FROM fact.issue_daily)"),
    "inferred_members": (
        None, "UPDATE dim.project SET is_inferred = true WHERE project_id = (SELECT min(project_id) FROM dim.project "
        "WHERE project_sk <> -1) AND is_current"),
    "fact_review_review": (None, "UPDATE fact.review SET review_sk = 999999999 WHERE review_id = 1"),
    # the freshness gate: an issue live at the as-of instant without a row on the as-of date; a live project
    # without a row for the as-of month
    "fact_issue_daily_fresh": (
        None, "DELETE FROM fact.issue_daily WHERE snapshot_date_key = 20261101 AND issue_key = (SELECT min(issue_key) "
        "FROM fact.issue_daily)"),
    "fact_monthly_fresh": (
        None, "DELETE FROM fact.project_monthly WHERE month_date_key = 20261101 AND project_id = "
        "(SELECT min(project_id) FROM dim.project WHERE project_sk <> -1 AND is_current AND NOT is_deleted)"),
    "fact_review_overdue_rule": (
        None, "UPDATE fact.review SET is_overdue = true, is_completed = true WHERE review_id = 1"),
}  # fmt: skip


@pytest.mark.usefixtures("prefect_harness")
def test_every_built_in_check_passes_on_clean_data_and_fails_on_data_crafted_to_break_it(upgraded: sa.Engine) -> None:
    from flows import demo_source
    from flows.warehouse_flow import warehouse

    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    run_id = warehouse(as_of=AS_OF)["run_id"]
    checks = quality.load_checks()
    binds = quality.bind_values(AS_OF, run_id, "Australia/Sydney")
    assert {c.name for c in checks} == set(BREAKS), "every built-in check needs a way to break it here"
    for built_in in checks:
        clean, breaking = BREAKS[built_in.name]
        with upgraded.connect() as conn, conn.begin() as transaction:
            if clean:
                conn.exec_driver_sql(clean)
            passed = quality.run_check(conn, built_in, binds)
            assert (passed.status, passed.failing_count) == ("pass", 0), (built_in.name, passed)
            conn.exec_driver_sql(breaking)
            failed = quality.run_check(conn, built_in, binds)
            assert failed.status == "fail" and failed.failing_count >= 1, (built_in.name, failed)
            transaction.rollback()


def test_a_run_leaves_no_block_range_of_the_warehouse_unsummarized(upgraded: sa.Engine) -> None:
    """The checks of a run's rows (`run_id = :run_id`) go through BRIN indexes, which read unsummarized ranges
    whole; the quality step summarizes what the run added first, on every BRIN index of dim, fact and brg."""
    from flows import demo_source
    from flows.warehouse_flow import warehouse

    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    warehouse(as_of=AS_OF)
    with upgraded.begin() as conn:
        indexes = conn.execute(sa.text(
            "SELECT n.nspname || '.' || c.relname FROM pg_class AS c JOIN pg_am AS a ON a.oid = c.relam "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE a.amname = 'brin' AND n.nspname IN ('dim', 'fact', 'brg')"
        )).scalars().all()  # fmt: skip
        assert "fact.ix_issue_daily_run_id" in indexes
        # what summarizing again finds to do: nothing
        left = {name: conn.execute(sa.text("SELECT brin_summarize_new_values(:i)"), {"i": name}).scalar_one()
                for name in indexes}  # fmt: skip
    assert left == dict.fromkeys(indexes, 0)
