"""`pmw status`, `pmw dq`, `pmw demo` and the mart highlights read with SQL that both dialects run (issue #15):
every statement in flows/runs.py, found by reading the module (a statement added later is covered), parses
as T-SQL, and none uses PostgreSQL-only syntax; every built-in quality check's queries, compiled for SQL
Server, parse and name only what the SQL Server schema has. On PostgreSQL the commands and checks run in
tests/test_cli.py and tests/test_quality.py."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import tsql_names
from conftest import tsql_violations
from sqlalchemy.dialects import mssql

from flows import artifacts, quality, run_log, runs

POSTGRESQL_ONLY = re.compile(r"\bLIMIT\b|\bFILTER\s*\(|\bEXTRACT\s*\(|::|\bILIKE\b|\bOFFSET\b", re.I)


# a representative value for each f-string field of their statements (a new field fails until it has one)
FIELDS = {"name": "issue", "table": "run_step_table"}
MODULES = (runs, artifacts, run_log)  # pmw status, dq and demo; the run's artifact; the run log's own records


def _text_statements() -> dict[str, str]:
    """Every string given to ``sa.text`` in MODULES (a module constant by name, an f-string with its fields
    filled with a representative name), by module and line."""
    found = {}
    for module in MODULES:
        name = Path(module.__file__).name
        found |= {f"{name} {where}": sql for where, sql in _module_statements(Path(module.__file__)).items()}
    return found


def _module_statements(path: Path) -> dict[str, str]:
    tree = ast.parse(path.read_text())
    constants = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id.endswith("_SQL")
    }
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "sa.text":
            (argument,) = node.args
            if isinstance(argument, ast.Name):
                found[f"line {node.lineno}"] = constants[argument.id]
            elif isinstance(argument, ast.JoinedStr):
                found[f"line {node.lineno}"] = "".join(
                    part.value if isinstance(part, ast.Constant) else FIELDS[ast.unparse(part.value)]  # type: ignore[attr-defined]
                    for part in argument.values
                )
            else:
                found[f"line {node.lineno}"] = ast.literal_eval(argument)
    return found


STATEMENTS = _text_statements()


def test_the_statements_are_found() -> None:
    assert len(STATEMENTS) >= 12 and any("mart.service_financials" in sql for sql in STATEMENTS.values())


@pytest.mark.parametrize("where", sorted(STATEMENTS))
def test_every_statement_of_the_commands_parses_as_tsql_and_its_names_resolve(where: str, mssql_schema) -> None:  # type: ignore[no-untyped-def]
    sql = STATEMENTS[where]
    assert not POSTGRESQL_ONLY.search(sql), sql
    expanded = re.sub(r"\bIN :(\w+)", r"IN (@\1_1, @\1_2)", sql)  # an expanding parameter, as it is sent
    tsql = re.sub(r"(?<!:):(\w+)", r"@\1", expanded)
    assert tsql_violations(tsql) == [], sql
    declared = "".join(f"DECLARE @{name} NVARCHAR(100);\n" for name in sorted(set(re.findall(r"@(\w+)", tsql))))
    problems = tsql_names.unresolved(declared + tsql, mssql_schema)
    assert not problems, "\n".join(map(str, problems)) + "\n" + sql


@pytest.mark.parametrize("name", runs.DIMENSIONS)
def test_the_built_statements_compile_for_sql_server_and_parse(name: str) -> None:
    run = sa.table("run", sa.column("run_id"), schema="ctl")
    for statement in (runs.dimension_counts(name), sa.select(run).order_by(run.c.run_id.desc()).limit(5)):
        sql = str(statement.compile(dialect=mssql.dialect(), compile_kwargs={"literal_binds": True}))
        assert not POSTGRESQL_ONLY.search(sql), sql
        assert tsql_violations(sql) == [], sql


# --- the quality checks: the queries each built-in check runs, as SQLAlchemy compiles them for SQL Server
CHECKS = {check.name: check for check in quality.load_checks()}
TSQL = mssql.dialect(paramstyle="named")


def _as_tsql(statement: sa.Select) -> str:  # type: ignore[type-arg]
    """``statement`` as SQL Server receives it, its parameters declared as variables of the batch."""
    compiled = statement.compile(dialect=TSQL, compile_kwargs={"render_postcompile": True})
    sql = re.sub(r"(?<!:):(\w+)", r"@\1", str(compiled))
    return "".join(f"DECLARE @{name} NVARCHAR(100);\n" for name in compiled.params) + sql


def test_the_checks_are_found() -> None:
    assert len(CHECKS) >= 40 and {"scd2_issue", "fact_issue_daily_fresh"} <= set(CHECKS)
    assert {check.kind for check in CHECKS.values()} >= {"scd2", "unique", "relationships", "custom_sql"}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_every_built_in_check_runs_as_tsql_whose_names_resolve(name: str, mssql_schema) -> None:  # type: ignore[no-untyped-def]
    """`pmw dq` reports what the checks found: on SQL Server each check's two queries (the failing units counted,
    and sampled) must parse as T-SQL and name only tables and columns the SQL Server warehouse has."""
    binds = quality.bind_values(datetime(2026, 6, 1, tzinfo=UTC), 7, "Australia/Sydney")
    for statement in quality.check_queries(CHECKS[name], binds):
        sql = _as_tsql(statement)
        assert not POSTGRESQL_ONLY.search(sql.replace("::", "")), sql
        assert tsql_violations(sql) == [], sql
        problems = tsql_names.unresolved(sql, mssql_schema)
        assert not problems, "\n".join(map(str, problems)) + "\n" + sql


def test_a_check_naming_a_missing_column_fails_the_name_check(mssql_schema) -> None:  # type: ignore[no-untyped-def]
    wrong = quality.parse_check("wrong", {"kind": "not_null", "table": "dim.issue", "columns": ["titel"]}, "test")
    counted, _ = quality.check_queries(wrong, quality.bind_values(datetime(2026, 6, 1, tzinfo=UTC), 7))
    assert tsql_names.unresolved(_as_tsql(counted), mssql_schema) != []
