"""One dialect module (issue #15, point 4): what PostgreSQL and SQL Server do differently is in
flows/dialects.py behind one interface, and nowhere else in flows/.

* No module of flows/ but the dialect module branches on a dialect's name (read from the modules' syntax
  trees, so a branch added later fails here), except the few that exist for PostgreSQL alone.
* Every SQL builder of each dialect (every ``*_sql`` member, enumerated from the classes, so a builder added
  later is covered) renders SQL that runs: on PostgreSQL it is executed against an upgraded warehouse in a
  transaction rolled back; for SQL Server, where none runs here, it parses as T-SQL and every table and
  column it names resolves against the schema the offline SQL Server script creates.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
import tsql_names
from conftest import tsql_violations

from flows import database, dialects
from flows.dialects import Dialect

FLOWS = Path(database.__file__).parent

# Modules that exist for PostgreSQL alone, and may ask whether a database is PostgreSQL:
POSTGRESQL_ONLY_MODULES = {
    "demo_source.py": "the demo generator is PL/pgSQL (it refuses any other source)",
    "verify.py": "pmw verify's reference warehouse and source live on a PostgreSQL server",
}


def _is_dialect_name(node: ast.expr) -> bool:
    """A dialect's name as a string, ``x.dialect.name`` or ``url.get_backend_name()``."""
    if isinstance(node, ast.Constant):
        return node.value in dialects.SUPPORTED
    if isinstance(node, ast.Attribute) and node.attr == "name":
        return isinstance(node.value, ast.Attribute) and node.value.attr == "dialect"
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get_backend_name"


def _is_supported_check(node: ast.Compare) -> bool:
    """``x in SUPPORTED_DIALECTS``: whether a dialect is supported at all is not a branch between them."""
    right = node.comparators[-1]
    named = right.attr if isinstance(right, ast.Attribute) else getattr(right, "id", "")
    return all(isinstance(op, ast.In | ast.NotIn) for op in node.ops) and named in {"SUPPORTED", "SUPPORTED_DIALECTS"}


def dialect_branches(source: str) -> list[str]:
    """The lines of ``source`` that compare a dialect's name with something (a branch between dialects)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare) or _is_supported_check(node):
            continue
        if any(_is_dialect_name(side) for side in (node.left, *node.comparators)):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_branch_finder_sees_every_spelling_of_a_dialect_branch() -> None:
    planted = """
if conn.dialect.name == "postgresql": pass
if engine.url.get_backend_name() != "mssql": pass
if dialect == "mssql": pass
top = "TOP 1" if "mssql" == name else ""
if url.get_backend_name() not in SUPPORTED_DIALECTS: pass
if dialect is not None: pass
"""
    assert [line.split(":")[0] for line in dialect_branches(planted)] == ["line 2", "line 3", "line 4", "line 5"]


@pytest.mark.parametrize("module", sorted(p.name for p in FLOWS.glob("*.py") if p.name != "dialects.py"))
def test_no_module_of_flows_branches_on_the_dialect(module: str) -> None:
    branches = dialect_branches((FLOWS / module).read_text())
    if module in POSTGRESQL_ONLY_MODULES:
        return  # declared above, with the reason
    assert branches == [], f"{module} branches on the dialect; add what differs to flows/dialects.py: {branches}"


def test_the_declared_postgresql_only_modules_still_need_it() -> None:
    """An exception that is no longer used is removed, so the list says only what is true."""
    unused = [m for m in POSTGRESQL_ONLY_MODULES if not dialect_branches((FLOWS / m).read_text())]
    assert unused == []


def test_every_supported_dialect_has_one_implementation_and_a_procedure_folder() -> None:
    assert database.SUPPORTED_DIALECTS == dialects.SUPPORTED == ("postgresql", "mssql")
    for name, dialect in dialects.DIALECTS.items():
        assert dialect.name == name and isinstance(dialect, Dialect)
        assert database.procs_dir(name).is_dir()
    with pytest.raises(Exception, match=r"dialect has the value 'oracle'.*postgresql or mssql"):
        dialects.named("oracle")


# --- every SQL builder, rendered --------------------------------------------------------------------------
ISSUES = "stg.issues"  # a staging table with a composite key, a partition column and timestamps
KEY = ("source", "source_project_id", "source_issue_id")


def _row(expression: str) -> str:
    """An expression over staged row ``s``, as a statement that evaluates it."""
    return f"SELECT {expression} AS v FROM {ISSUES} AS s WHERE s.run_id = :run_id"


def _services_where(predicate: str | None) -> str | None:
    return None if predicate is None else f"SELECT s.service_id FROM stg.services AS s WHERE {predicate}"


CALENDAR_PARAMETERS = ["p_start_date", "p_end_date", "p_fiscal_year_start_month"]
Sample = Callable[[Dialect], str | list[str] | None]

# One sample per builder: the statement(s) it is used in, and the parameters they bind.
SAMPLES: dict[str, Sample] = {
    "transaction_setting_sql": lambda d: d.transaction_setting_sql(),
    "call_sql": lambda d: d.call_sql("warehouse.load_dim_date", CALENDAR_PARAMETERS),
    "migration_lock_sql": lambda d: d.migration_lock_sql(),
    "session_lock_sql": lambda d: d.session_lock_sql(dialects.RUN_LOCK, "Exclusive", 0),  # type: ignore[attr-defined]
    "release_locks_sql": lambda d: d.release_locks_sql(),
    "text_sql": lambda d: _row(d.text_sql("s.created_at", 60)),
    "literal_sql": lambda d: _row(d.literal_sql("outside 0-100")),
    "concat_sql": lambda d: _row(d.concat_sql(d.literal_sql("title "), "s.title", d.literal_sql("|"), "s.status")),
    "row_hash_sql": lambda d: _row(d.row_hash_sql(("time_zone", *KEY, "created_at", "is_deleted"))),
    "row_json_sql": lambda d: _row(d.row_json_sql()),
    "not_a_number_sql": lambda d: _services_where(d.not_a_number_sql("s.unit_rate")),
    "minus_seconds_sql": lambda d: _row(d.minus_seconds_sql("s.created_at", 36000)),
    "local_to_utc_sql": lambda d: _row(d.local_to_utc_sql("s.created_at", "s.time_zone")),
    "utc_instant_sql": lambda d: _row(d.utc_instant_sql(d.minus_seconds_sql("s.created_at", 39600))),
    "delete_sql": lambda d: d.delete_sql(ISSUES, "s", "s.run_id = :run_id AND s.title IS NULL"),
    "update_sql": lambda d: d.update_sql(ISSUES, "s", "title = s.status, time_zone = 'UTC'", "s.run_id = :run_id"),
    "delete_counted_sql": lambda d: d.delete_counted_sql(ISSUES, "s", "s.run_id = :run_id", "source"),
    "create_temp_table_sql": lambda d: [
        d.create_temp_table_sql("pmw_sample", ", ".join(KEY), f"FROM {ISSUES}", empty=True),
        f"INSERT INTO {d.temp_table('pmw_sample')} ({', '.join(KEY)}) "
        f"SELECT {', '.join(KEY)} FROM {ISSUES} WHERE run_id = :run_id",
        f"SELECT {d.row_hash_sql(KEY)} FROM {d.temp_table('pmw_sample')} AS s",
        d.drop_temp_table_sql("pmw_sample"),
    ],
    "drop_temp_table_sql": lambda d: d.drop_temp_table_sql("pmw_never_made"),
    "refresh_statistics_sql": lambda d: d.refresh_statistics_sql("ctl.loaded_row"),
    "summarize_new_ranges_sql": lambda d: d.summarize_new_ranges_sql(),
    "portable_view_sql": lambda d: d.portable_view_sql(
        "-- a view\nCREATE VIEW mart.pmw_sample AS\nSELECT s.service_id FROM dim.service AS s WHERE s.is_current = '1'"
    ),
}
BINDS = {"run_id": 1, "name": "pmw.sample", "value": "1", "p_start_date": date(2026, 1, 1),
         "p_end_date": date(2026, 1, 3), "p_fiscal_year_start_month": 7}  # fmt: skip


def _builders(dialect: Dialect) -> list[str]:
    return sorted(name for name, _ in inspect.getmembers(type(dialect), inspect.isfunction) if name.endswith("_sql"))


BUILDERS = [(name, builder) for name, dialect in dialects.DIALECTS.items() for builder in _builders(dialect)]


def _statements(dialect: Dialect, builder: str) -> list[str]:
    assert builder in SAMPLES, f"{type(dialect).__name__}.{builder} has no sample in this test: add one"
    rendered = SAMPLES[builder](dialect)
    return [] if rendered is None else [rendered] if isinstance(rendered, str) else rendered


def test_the_builders_are_found_in_both_dialects() -> None:
    found = {builder for _, builder in BUILDERS}
    assert {"row_hash_sql", "delete_counted_sql", "call_sql", "migration_lock_sql"} <= found
    assert set(SAMPLES) == found, "a builder without a sample, or a sample of a builder that no longer exists"


def test_a_portable_view_opens_with_one_create_view_line() -> None:
    for text in ("SELECT 1 AS one", "CREATE VIEW mart.a AS SELECT 1 AS one;\nCREATE VIEW mart.b AS SELECT 2 AS two"):
        with pytest.raises(ValueError, match="exactly one line starting 'CREATE VIEW '"):
            dialects.named("mssql").portable_view_sql(text)


@pytest.mark.parametrize("builder", sorted(_builders(dialects.named("mssql"))))
def test_every_sql_server_builder_parses_as_tsql_and_its_names_resolve(builder: str, mssql_schema) -> None:  # type: ignore[no-untyped-def]
    statements = _statements(dialects.named("mssql"), builder)
    # one batch, as the driver sends a transaction's statements to one session; binds as T-SQL variables
    batch = ";\n".join(re.sub(r"(?<!:):(\w+)", r"@\1", s) for s in statements)
    if not statements:  # the interface's "nothing to do here" (not an override that forgot to return)
        assert builder not in vars(dialects.SqlServer), f"SqlServer.{builder} renders nothing"
        return
    declared = "".join(f"DECLARE @{name} NVARCHAR(100);\n" for name in BINDS if f"@{name}" in batch)
    assert tsql_violations(declared + batch) == [], batch
    temp = tsql_names.temp_tables(batch, mssql_schema)
    problems = tsql_names.unresolved(batch, mssql_schema, temp)
    assert not problems, "\n".join(map(str, problems))


def test_the_name_check_of_the_builders_is_not_blind(mssql_schema) -> None:  # type: ignore[no-untyped-def]
    """A misspelt column in a builder's output is found (the check above can fail)."""
    wrong = dialects.named("mssql").delete_sql(ISSUES, "s", "s.run_id = @run_id AND s.titel IS NULL")
    assert tsql_names.unresolved(f"DECLARE @run_id INT;\n{wrong}", mssql_schema) != []


def test_every_postgresql_builder_runs_on_an_upgraded_warehouse(upgraded: sa.Engine) -> None:
    """Each builder's sample statements run in a transaction of their own, rolled back."""
    postgresql = dialects.named("postgresql")
    failed = {}
    for builder in _builders(postgresql):
        statements = _statements(postgresql, builder)
        assert statements, f"{builder} renders nothing on PostgreSQL"
        with upgraded.connect() as conn:
            try:
                for statement in statements:
                    binds = {k: v for k, v in BINDS.items() if re.search(rf"(?<!:):{k}\b", statement)}
                    conn.execute(sa.text(statement), binds)
            except sa.exc.DBAPIError as exc:
                failed[builder] = str(exc.orig).splitlines()[0]
            finally:
                conn.rollback()
    assert failed == {}
