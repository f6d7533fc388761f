"""`pmw status`, `pmw dq`, `pmw demo` and the mart highlights read with SQL that both dialects run (issue #15):
every statement in flows/runs.py, found by reading the module (a statement added later is covered), parses
as T-SQL, and none uses PostgreSQL-only syntax. On PostgreSQL the commands run in tests/test_cli.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import tsql_violations
from sqlalchemy.dialects import mssql

from flows import runs

POSTGRESQL_ONLY = re.compile(r"\bLIMIT\b|\bFILTER\s*\(|\bEXTRACT\s*\(|::|\bILIKE\b|\bOFFSET\b", re.I)


def _text_statements() -> dict[str, str]:
    """Every string given to ``sa.text`` in flows/runs.py (a module constant by name, an f-string with its
    fields filled with a representative name), by line."""
    tree = ast.parse(Path(runs.__file__).read_text())
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
                    part.value if isinstance(part, ast.Constant) else "issue" for part in argument.values
                )
            else:
                found[f"line {node.lineno}"] = ast.literal_eval(argument)
    return found


STATEMENTS = _text_statements()


def test_the_statements_are_found() -> None:
    assert len(STATEMENTS) >= 12 and any("mart.service_financials" in sql for sql in STATEMENTS.values())


@pytest.mark.parametrize("where", sorted(STATEMENTS))
def test_every_statement_of_the_commands_parses_as_tsql(where: str) -> None:
    sql = STATEMENTS[where]
    assert not POSTGRESQL_ONLY.search(sql), sql
    assert tsql_violations(re.sub(r"(?<!:):(\w+)", r"@\1", sql)) == [], sql


@pytest.mark.parametrize("name", runs.DIMENSIONS)
def test_the_built_statements_compile_for_sql_server_and_parse(name: str) -> None:
    run = sa.table("run", sa.column("run_id"), schema="ctl")
    for statement in (runs.dimension_counts(name), sa.select(run).order_by(run.c.run_id.desc()).limit(5)):
        sql = str(statement.compile(dialect=mssql.dialect(), compile_kwargs={"literal_binds": True}))
        assert not POSTGRESQL_ONLY.search(sql), sql
        assert tsql_violations(sql) == [], sql
