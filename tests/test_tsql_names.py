"""Every name in the project's T-SQL resolves against the schema the offline SQL Server script creates, and a
misspelt column in any T-SQL procedure, function or view fails here (issue #15, point 3).

No SQL Server runs here: the script is the one a DBA runs (`pmw upgrade --sql --dialect mssql`), the
resolver (tests/tsql_names.py) binds names as SQL Server does, and the misspelling test proves, object by
object, that the check is not blind to the object it passes.
"""

from __future__ import annotations

import pytest
import tsql_names
from sqlfluff.core.parser import BaseSegment

from flows.database import object_texts

TSQL_TEXTS = object_texts("mssql")  # the portable views as SQL Server creates them included
TSQL_OBJECTS = sorted(TSQL_TEXTS)


@pytest.fixture
def schema(mssql_schema: tsql_names.Schema) -> tsql_names.Schema:
    return mssql_schema


def test_the_offline_schema_has_every_table_and_routine_of_the_project(schema: tsql_names.Schema) -> None:
    assert {"dim.client", "fact.issue_daily", "brg.review_issue", "ctl.run_step", "stg.issues"} <= set(schema.tables)
    assert "rows_closed" not in (schema.tables["ctl.run_step"] or ())  # dropped by a later revision
    assert "issue_analytics_sk" in (schema.tables["fact.issue_daily"] or ())  # added by a later revision
    assert set(TSQL_OBJECTS) <= schema.routines


@pytest.mark.parametrize("name", TSQL_OBJECTS)
def test_every_name_in_the_object_resolves(name: str, schema: tsql_names.Schema) -> None:
    problems = tsql_names.unresolved(TSQL_TEXTS[name], schema)
    assert not problems, "\n".join(map(str, problems))


def _misspelt(sql: str, identifier: BaseSegment) -> str:
    where = identifier.pos_marker.source_slice
    raw = identifier.raw
    wrong = f"{raw[:-1]}_misspelt]" if raw.endswith("]") else f"{raw}_misspelt"
    return sql[: where.start] + wrong + sql[where.stop :]


@pytest.mark.parametrize("name", TSQL_OBJECTS)
def test_a_misspelt_column_in_the_object_fails(name: str, schema: tsql_names.Schema) -> None:
    sql = TSQL_TEXTS[name]
    references = tsql_names.bound_references(sql, schema)
    if not references:
        assert "FROM" not in sql.upper().split("BEGIN", 1)[-1], "an object that reads tables binds no column"
        return  # a scalar function of its parameters only (warehouse.normalize_priority)
    # the column named in the middle of the text (one per object: each parse of a large one takes seconds)
    reference = sorted(references, key=lambda r: r.pos_marker.source_slice.start)[len(references) // 2]
    identifier = [s for s in reference.segments if s.is_type("naked_identifier", "quoted_identifier")][-1]
    problems = tsql_names.unresolved(_misspelt(sql, identifier), schema)
    line = identifier.pos_marker.line_no
    assert any(p.line == line and "_misspelt" in p.name for p in problems), (line, identifier.raw, problems)


def test_every_column_reference_is_bound_to_known_columns(schema: tsql_names.Schema) -> None:
    # so the misspelling test above holds for every column any T-SQL object names, not only the middle one
    unbound = []
    for name, sql in TSQL_TEXTS.items():
        bound = {id(r) for r in tsql_names.bound_references(sql, schema)}
        references = tsql_names.parse(sql).recursive_crawl("column_reference")
        unbound += [f"{name}:{r.pos_marker.line_no}: {r.raw}" for r in references if id(r) not in bound]
    assert not unbound, unbound


# --- the resolver's rules, on small texts ---------------------------------------------------------------

SMALL = tsql_names.Schema(
    tables={"dim.a": frozenset({"k", "x"}), "dim.b": frozenset({"k", "y"})}, routines={"warehouse.p"}
)


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("SELECT a.x FROM dim.a AS a", None),
        ("SELECT a.z FROM dim.a AS a", "a has no column z"),
        ("SELECT x, y FROM dim.a AS a JOIN dim.b AS b ON a.k = b.k", None),
        ("SELECT z FROM dim.a AS a JOIN dim.b AS b ON a.k = b.k", "no such column"),
        ("SELECT a.x FROM dim.a AS a JOIN dim.b AS b ON a.k = b.z", "b has no column z"),
        ("SELECT c.x FROM dim.a AS a", "c is not a table of the query"),
        ("SELECT x FROM dim.nope", "no such table"),
        ("SELECT a.x FROM dim.a AS a WHERE EXISTS (SELECT 1 FROM dim.b AS b WHERE b.k = a.k)", None),
        ("SELECT a.x FROM dim.a AS a WHERE EXISTS (SELECT 1 FROM dim.b AS b WHERE b.k = a.y)", "a has no column y"),
        ("WITH c AS (SELECT k, x AS renamed FROM dim.a) SELECT c.renamed FROM c", None),
        ("WITH c AS (SELECT k, x AS renamed FROM dim.a) SELECT c.x FROM c", "c has no column x"),
        ("SELECT d.x FROM (SELECT x FROM dim.a) AS d", None),
        ("SELECT d.k FROM (SELECT x FROM dim.a) AS d", "d has no column k"),
        ("SELECT x AS n FROM dim.a ORDER BY n", None),
        ("SELECT a.x, v.m FROM dim.a AS a CROSS APPLY (VALUES (a.k, 1)) AS v (m, n)", None),
        ("SELECT v.q FROM dim.a AS a CROSS APPLY (VALUES (a.k, 1)) AS v (m, n)", "v has no column q"),
        ("SELECT s.value FROM STRING_SPLIT(N'a,b', N',') AS s", None),
        ("SELECT s.valu FROM STRING_SPLIT(N'a,b', N',') AS s", "s has no column valu"),
        ("SELECT x INTO #t FROM dim.a; SELECT t.x FROM #t AS t", None),
        ("SELECT x INTO #t FROM dim.a; SELECT t.k FROM #t AS t", "t has no column k"),
        ("SELECT k FROM #never_made", "no such temp table"),
        ("INSERT INTO dim.a (k, x) SELECT k, y FROM dim.b", None),
        ("INSERT INTO dim.a (k, z) SELECT k, y FROM dim.b", "has no column z"),
        ("UPDATE d SET x = b.y FROM dim.a AS d JOIN dim.b AS b ON b.k = d.k", None),
        ("UPDATE d SET y = b.y FROM dim.a AS d JOIN dim.b AS b ON b.k = d.k", "has no column y"),
        ("UPDATE dim.a SET x = 1 WHERE k = 2", None),
        ("DELETE FROM dim.a WHERE z = 1", "no such column"),
        (
            "MERGE INTO dim.a AS t USING dim.b AS s ON t.k = s.k WHEN MATCHED THEN UPDATE SET t.x = s.y "
            "WHEN NOT MATCHED THEN INSERT (k, x) VALUES (s.k, s.y);",
            None,
        ),
        (
            "MERGE INTO dim.a AS t USING dim.b AS s ON t.k = s.k WHEN MATCHED THEN UPDATE SET t.x = s.x;",
            "s has no column x",
        ),
        (
            "MERGE INTO dim.a AS t USING dim.b AS s ON t.k = s.k "
            "WHEN NOT MATCHED THEN INSERT (k, y) VALUES (s.k, s.y);",
            "has no column y",
        ),
        ("SELECT c.name FROM sys.columns AS c", None),
        ("SELECT j.[key], j.[value] FROM OPENJSON(N'{}') AS j", None),
        (
            "SELECT j.[kee] FROM OPENJSON(N'{}') AS j",
            "j has no column kee",
        ),  # a catalog view: its columns are not known offline
        ("EXEC warehouse.p", None),
        ("EXEC warehouse.q", "no such procedure"),
    ],
)
def test_the_resolver_binds_names_as_sql_server_does(sql: str, problem: str | None) -> None:
    text = f"CREATE OR ALTER PROCEDURE warehouse.t AS\nBEGIN\n    {sql};\nEND"
    problems = tsql_names.unresolved(text, SMALL)
    if problem is None:
        assert not problems, problems
    else:
        assert any(problem in f"{p.name}: {p.reason}" for p in problems), problems
