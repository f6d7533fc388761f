"""The dynamic SQL of the T-SQL procedures, generated from representative inputs, parses as T-SQL and names
only what the offline SQL Server schema has (issue #15, point 3): for every caller of merge_scd2 (each
load_dim_* procedure, found in their texts), every cursor source the flow reconciles with
close_vanished_keys (found in flows/sources.py), and add_inferred_members' every reference.

The inputs stand in for what SQL Server would read at run time: the key columns each caller passes, the
dimension's tracked columns (its columns but the surrogate key, the SCD bookkeeping and the business key),
and the caller's #incoming as its own text creates it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import tsql_dynamic
import tsql_names
from conftest import tsql_violations

from flows import key_sets
from flows.database import procs_dir
from flows.sources import SOURCES

WAREHOUSE = procs_dir("mssql") / "warehouse"
BOOKKEEPING = {"row_hash", "valid_from", "valid_to", "is_current", "is_inferred", "run_id"}
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def schema(mssql_schema: tsql_names.Schema) -> tsql_names.Schema:
    return mssql_schema


def _text(name: str) -> str:
    return (WAREHOUSE / f"{name}.sql").read_text()


def _label(value: object) -> str:
    return value if isinstance(value, str) else ""


def _merge_callers() -> list[tuple[str, dict]]:
    return [(path.stem, call) for path in sorted(WAREHOUSE.glob("load_dim_*.sql"))
            for call in tsql_dynamic.calls(path.read_text(), "warehouse.merge_scd2")]  # fmt: skip


def _key_rows(columns: list[str], present: list[str] | None = None) -> list[dict]:
    return [{"column_name": c, "present_name": p, "ordinal": i} for i, (c, p) in
            enumerate(zip(columns, present or columns, strict=True), 1)]  # fmt: skip


def _attribute_rows(schema: tsql_names.Schema, dimension: str, keys: list[str]) -> list[dict]:
    columns = sorted(schema.tables[f"dim.{dimension}"] or ())
    tracked = [c for c in columns if c not in BOOKKEEPING | {f"{dimension}_sk", *keys}]
    return [{"column_name": c, "ordinal": i} for i, c in enumerate(tracked, 1)]


def _assert_sound(generated: list[str], schema: tsql_names.Schema, temp: dict) -> None:
    assert generated, "the procedure built no statement"
    for sql in generated:
        assert tsql_violations(sql) == [], sql
        problems = tsql_names.unresolved(sql, schema, temp)
        assert not problems, "\n".join(map(str, problems)) + "\n" + sql


def test_every_dimension_load_calls_merge_scd2() -> None:
    callers = {name for name, _ in _merge_callers()}
    assert callers == {path.stem for path in WAREHOUSE.glob("load_dim_*.sql")} - {"load_dim_date"}


@pytest.mark.parametrize(("caller", "call"), _merge_callers(), ids=_label)
def test_merge_scd2s_statements_for_each_caller_are_sound(caller: str, call: dict, schema: tsql_names.Schema) -> None:
    # (a full compare builds the same statement, then calls close_vanished_keys: tested below)
    dimension, keys = call["@p_dimension"], call["@p_key_columns"].split(",")
    run = tsql_dynamic.Run(
        arguments={**call, "@p_full_compare": 0, "@p_as_of": AS_OF, "@p_run_id": 7},
        table_rows={"@keys": _key_rows(keys), "@attributes": _attribute_rows(schema, dimension, keys)},
        existing={f"dim.[{dimension}]", "tempdb..#incoming"},
    )
    generated = tsql_dynamic.executed_sql(_text("merge_scd2"), run)
    temp = tsql_names.temp_tables(_text(caller), schema)
    assert "#incoming" in temp, f"{caller} creates no #incoming"
    _assert_sound(generated, schema, temp)


def _vanished_cases() -> list[tuple[str, dict, list[str]]]:
    """(label, arguments, present columns) for every caller of close_vanished_keys: merge_scd2 on a full
    compare (the key set is #incoming), and the flow's reconciliation of each cursor source."""
    cases = []
    for caller, call in _merge_callers():
        keys = call["@p_key_columns"].split(",")
        cases.append((caller, {"@p_dimension": call["@p_dimension"], "@p_key_columns": call["@p_key_columns"],
                               "@p_present": "#incoming", "@p_present_columns": call["@p_key_columns"],
                               "@p_present_run_id": None}, keys))  # fmt: skip
    for source in SOURCES:
        if key_sets.reconciled(source):
            keys = list(source.dimension_key or source.business_key)
            cases.append((f"reconcile {source.name}", {
                "@p_dimension": key_sets.dimension_of(source), "@p_key_columns": ",".join(keys),
                "@p_present": f"stg.{key_sets.key_table(source)}", "@p_present_columns": ",".join(source.business_key),
                "@p_present_run_id": 7}, list(source.business_key)))  # fmt: skip
    return cases


def _vanished_statements(label: str, arguments: dict, present: list[str], kept_keys: bool,
                         schema: tsql_names.Schema) -> tuple[list[str], dict]:  # fmt: skip
    dimension = arguments["@p_dimension"]
    keys = arguments["@p_key_columns"].split(",")
    run = tsql_dynamic.Run(
        arguments={**arguments, "@p_max_delete_share": 0.5, "@p_min_rows": 20, "@p_as_of": AS_OF, "@p_run_id": 7},
        table_rows={"@keys": _key_rows(keys, present), "@attributes": _attribute_rows(schema, dimension, keys)},
        existing={f"dim.[{dimension}]", "tempdb..#incoming", *({"tempdb..#pmw_kept_keys"} if kept_keys else ())},
    )
    generated = tsql_dynamic.executed_sql(_text("close_vanished_keys"), run)
    temp: dict = {"#pmw_kept_keys": frozenset({"key_text"})} if kept_keys else {}
    if arguments["@p_present"] == "#incoming":
        temp |= tsql_names.temp_tables(_text(label), schema)
    return generated, temp


@pytest.mark.parametrize(("label", "arguments", "present"), _vanished_cases(), ids=_label)
def test_close_vanished_keys_statements_for_each_caller_are_sound(
    label: str, arguments: dict, present: list[str], schema: tsql_names.Schema
) -> None:
    # with keys quarantined this run kept open: the statement with every clause the procedure can add
    generated, temp = _vanished_statements(label, arguments, present, True, schema)
    _assert_sound(generated, schema, temp)
    assert "#pmw_kept_keys" in generated[0]


def test_close_vanished_keys_without_quarantined_keys_leaves_their_clause_out(schema: tsql_names.Schema) -> None:
    label, arguments, present = _vanished_cases()[-1]
    generated, temp = _vanished_statements(label, arguments, present, False, schema)
    _assert_sound(generated, schema, temp)
    assert "#pmw_kept_keys" not in generated[0]


@pytest.mark.parametrize("since_run_id", [None, 6], ids=["first run", "later run"])
def test_add_inferred_members_statements_are_sound(since_run_id: int | None, schema: tsql_names.Schema) -> None:
    run = tsql_dynamic.Run(arguments={"@p_run_id": 7, "@p_since_run_id": since_run_id})
    generated = tsql_dynamic.executed_sql(_text("add_inferred_members"), run)
    assert len(generated) == 11  # one per reference the procedure lists
    _assert_sound(generated, schema, {})


def test_a_misspelt_column_in_dynamic_sql_fails(schema: tsql_names.Schema, tmp_path: Path) -> None:
    # the check sees inside the strings: a wrong column in a literal of add_inferred_members is reported
    wrong = _text("add_inferred_members").replace("AND p.is_current = 1) OPTION", "AND p.is_currnt = 1) OPTION")
    assert wrong != _text("add_inferred_members")
    generated = tsql_dynamic.executed_sql(wrong, tsql_dynamic.Run(arguments={"@p_run_id": 7, "@p_since_run_id": 6}))
    problems = [p for sql in generated for p in tsql_names.unresolved(sql, schema, {})]
    assert len(problems) == 11 and all("is_currnt" in p.reason for p in problems), problems


def test_the_interpreter_refuses_what_it_does_not_run() -> None:
    sql = "CREATE OR ALTER PROCEDURE warehouse.t AS\nBEGIN\n    DECLARE @s NVARCHAR(MAX) = SOUNDEX(N'x');\nEND"
    with pytest.raises(tsql_dynamic.Unsupported, match="function SOUNDEX"):
        tsql_dynamic.executed_sql(sql, tsql_dynamic.Run(arguments={}))
