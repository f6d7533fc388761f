"""Drift between the dialects fails here (issue #15, point 2): for every procedure, function and view in
``procs/``, found by listing both trees, the PostgreSQL and T-SQL texts agree on

* their parameters, in order, by name and kind of type (``bigint`` and ``BIGINT``; ``text``, ``text[]`` and
  ``NVARCHAR``; ``timestamptz`` and ``DATETIMEOFFSET``), and on what they hand back (PostgreSQL's ``INOUT``
  parameters are the T-SQL procedure's ``OUTPUT`` parameters or the columns of its closing result set);
* the tables each header declares it reads and writes, and each text touches exactly those tables and
  writes only the declared ones;
* the rules each object implements, declared next to it in ``procs/rules/<schema>/<name>.toml`` with the
  text that shows each rule (a regular expression each version, comments left out, must contain: one for
  both, or one per dialect where they spell it differently; optionally one it must no longer contain);
* the columns of each mart view, in order (their types are not known offline for T-SQL: README, "Where
  the dialects still differ").

The two rules of the daily issue snapshot that had drifted (issue #15) are among the declared ones.
"""

from __future__ import annotations

import re
import tomllib

import pytest
import sqlalchemy as sa
import tsql_names

from flows.database import SUPPORTED_DIALECTS, object_texts, procs_dir

TABLE = r"\b((?:stg|dim|fact|brg|ctl|mart)\.[a-z_]\w*)"
# objects one dialect has and the other does not, and why
ONE_DIALECT_ONLY = {
    "warehouse.prepare_incoming": "PostgreSQL's callers make merge_scd2's temp table with it; each T-SQL caller "
    "makes #incoming itself with SELECT TOP (0) ... INTO, which cannot be done for it by a procedure (a temp "
    "table a procedure creates is dropped when it returns)",
}
# parameters one dialect's version has and the other's has not, and why
PARAMETER_DIFFERENCES = {
    "warehouse.close_vanished_keys": (
        "p_report",
        "T-SQL only: a procedure's closing SELECT reaches the client "
        "even when another procedure called it, so merge_scd2 passes 0 to keep "
        "it quiet; PostgreSQL's INOUT parameters have no such effect",
    ),
}
# tables one dialect's version reads and the other's does not, and why
READ_DIFFERENCES = {
    "warehouse.load_fact_service_monthly": (
        "dim.date",
        "T-SQL lists the months from the calendar (SQL Server "
        "before 2022 has no GENERATE_SERIES); PostgreSQL generates them. "
        "They agree while the calendar covers every month loaded, which "
        "the calendar step keeps so from PMW_CALENDAR_START on",
    ),
}
TYPE_KINDS = {
    "bigint": "integer", "integer": "integer", "int": "integer", "smallint": "integer",
    "text": "text", "varchar": "text", "nvarchar": "text", "sysname": "text", "nchar": "text", "char": "text",
    "timestamptz": "instant", "datetimeoffset": "instant", "date": "date", "boolean": "boolean", "bit": "boolean",
    "numeric": "number", "decimal": "number",
}  # fmt: skip


def _objects() -> dict[str, dict[str, str]]:
    """{object: {dialect: its text}}, a portable object's text as each dialect creates it."""
    found: dict[str, dict[str, str]] = {}
    for dialect in SUPPORTED_DIALECTS:
        for name, text in object_texts(dialect).items():
            found.setdefault(name, {})[dialect] = text
    return dict(sorted(found.items()))


OBJECTS = _objects()
BOTH = [name for name, paths in OBJECTS.items() if len(paths) == len(SUPPORTED_DIALECTS)]
ROUTINES = [name for name in BOTH if name.startswith("warehouse.")]
VIEWS = [name for name in BOTH if name.startswith("mart.")]


def _text(name: str, dialect: str) -> str:
    return OBJECTS[name][dialect]


def _code(sql: str) -> str:
    """The text without comments and string literals (a table named in a message is not read)."""
    sql = re.sub(r"--[^\n]*", "", sql)
    return re.sub(r"N?'(?:[^']|'')*'", "''", sql)


def _header(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if line.startswith("--"))


def test_every_object_has_both_dialects_but_the_declared_exceptions() -> None:
    one_sided = {name for name, paths in OBJECTS.items() if len(paths) != len(SUPPORTED_DIALECTS)}
    assert one_sided == set(ONE_DIALECT_ONLY)


# --- parameters and results ------------------------------------------------------------------------


def _kind(type_text: str) -> str:
    base = re.match(r"\s*(\w+)", type_text)
    assert base, type_text
    kind = TYPE_KINDS.get(base[1].lower())
    assert kind, f"no kind for the type {type_text!r}: add it to TYPE_KINDS"
    return kind + ("[]" if "[]" in type_text and kind != "text" else "")


def _postgresql_signature(sql: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(inputs as (name, kind), handed-back names) of a PostgreSQL procedure or function."""
    code = _code(sql)
    start = re.search(r"CREATE OR REPLACE (?:PROCEDURE|FUNCTION) [\w.]+\(", code)
    assert start, "no CREATE OR REPLACE PROCEDURE/FUNCTION"
    depth, i = 1, start.end()
    while depth:
        depth += {"(": 1, ")": -1}.get(code[i], 0)
        i += 1
    inputs, outputs = [], []
    for parameter in tsql_names.split_top_level(code[start.end() : i - 1]):
        words = parameter.split()
        if words[0].upper() in ("INOUT", "OUT"):
            outputs.append(words[1].lower())
        else:
            inputs.append((words[0].lower(), _kind(" ".join(words[1:]))))
    return inputs, outputs


def _tsql_signature(sql: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(inputs, handed-back names) of a T-SQL procedure or function: OUTPUT parameters, or the names of the
    procedure's closing result set."""
    code = _code(sql)
    head = re.search(
        r"CREATE OR ALTER (PROCEDURE|FUNCTION) [\w.]+\s*\(?(.*?)\)?\s*(?:RETURNS\b.*?)?\bAS\s*\n", code, re.S
    )
    assert head, "no CREATE OR ALTER PROCEDURE/FUNCTION"
    inputs, outputs = [], []
    for parameter in tsql_names.split_top_level(head[2]):
        words = parameter.split()
        name = words[0].lstrip("@").lower()
        if words[-1].upper() == "OUTPUT":
            outputs.append(name)
        else:
            inputs.append((name, _kind(" ".join(words[1:]).split("=")[0])))
    if head[1] == "PROCEDURE" and not outputs:
        outputs = tsql_names.closing_result_columns(sql)
    return inputs, outputs


@pytest.mark.parametrize("name", ROUTINES)
def test_parameters_and_results_agree(name: str) -> None:
    pg_inputs, pg_outputs = _postgresql_signature(_text(name, "postgresql"))
    ms_inputs, ms_outputs = _tsql_signature(_text(name, "mssql"))
    if name in PARAMETER_DIFFERENCES:
        ms_inputs = [p for p in ms_inputs if p[0] != PARAMETER_DIFFERENCES[name][0]]
    assert pg_inputs == ms_inputs, (pg_inputs, ms_inputs)
    assert pg_outputs == ms_outputs, (pg_outputs, ms_outputs)


# --- tables read and written -----------------------------------------------------------------------


def _declared(sql: str) -> tuple[set[str], set[str]]:
    header = _header(sql)
    reads = re.search(r"Reads:(.*?)(?:Writes:|$)", header, re.S)
    writes = re.search(r"Writes:(.*)", header, re.S)
    return (
        set(re.findall(TABLE, reads[1])) if reads else set(),
        set(re.findall(TABLE, writes[1])) if writes else set(),
    )


_WRITES = re.compile(
    r"\b(?:INSERT\s+INTO|MERGE(?:\s+INTO)?|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|UPDATE)\s+" + TABLE, re.I
)
_ALIASED_WRITE = re.compile(r"\b(?:UPDATE|DELETE)\s+([a-z_]\w*)\b(?!\.)(?=\s+(?:SET\b|FROM\b))", re.I)


def _touched(sql: str) -> tuple[set[str], set[str]]:
    """(every table the code names, the tables it writes): T-SQL's UPDATE alias ... FROM table AS alias too."""
    code = _code(sql)
    named = set(re.findall(TABLE, code))
    written = set(_WRITES.findall(code))
    for alias in _ALIASED_WRITE.finditer(code):
        owner = re.search(TABLE + r"\s+(?:AS\s+)?" + alias[1] + r"\b", code[alias.end() :], re.I)
        if owner and alias[1].upper() not in ("FROM", "SET"):
            written.add(owner[1])
    return named, written


def _writes_dynamically(sql: str) -> bool:
    code = _code(sql)
    return bool(re.search(r"\bwarehouse\.merge_scd2\b|\bsp_executesql\b|\bEXECUTE\s+format\b", code, re.I))


@pytest.mark.parametrize("name", ROUTINES)
def test_both_declare_the_same_tables_and_touch_just_those(name: str) -> None:
    declared = {d: _declared(_text(name, d)) for d in SUPPORTED_DIALECTS}
    if name in READ_DIFFERENCES:
        declared["postgresql"][0].add(READ_DIFFERENCES[name][0])  # compared as if PostgreSQL read it too
    assert declared["postgresql"] == declared["mssql"], declared
    reads, writes = declared["postgresql"]
    for dialect in SUPPORTED_DIALECTS:
        sql = _text(name, dialect)
        named, written = _touched(sql)
        if name in READ_DIFFERENCES and dialect == "postgresql":
            named.add(READ_DIFFERENCES[name][0])
        assert named <= reads | writes, (dialect, "named but not declared", named - (reads | writes))
        # a dimension written through merge_scd2 (or by dynamic SQL) is named in a string, not in the code
        unnamed = (reads | writes) - named
        if _writes_dynamically(sql):
            unnamed = {t for t in unnamed if not (t in writes and t.startswith("dim."))}
        assert not unnamed, (dialect, "declared but never named", unnamed)
        assert written <= writes, (dialect, "written but not declared as written", written - writes)


# --- mart views ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgresql_view_columns(upgraded_template: sa.URL) -> dict[str, list[str]]:
    engine = sa.create_engine(upgraded_template, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            listed = sa.text("SELECT table_name, column_name FROM information_schema.columns "
                             "WHERE table_schema = 'mart' ORDER BY table_name, ordinal_position")  # fmt: skip
            rows = conn.execute(listed).all()
    finally:
        engine.dispose()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(f"mart.{table}", []).append(column)
    return columns


@pytest.mark.parametrize("name", VIEWS)
def test_mart_views_have_the_same_columns_in_the_same_order(
    name: str, postgresql_view_columns: dict[str, list[str]]
) -> None:
    assert tsql_names.view_column_names(_text(name, "mssql")) == postgresql_view_columns[name]


# --- declared rules ----------------------------------------------------------------------------------

RULES_ROOT = procs_dir("postgresql").parent / "rules"


def _rules(name: str) -> list[dict[str, str]]:
    schema, obj = name.split(".")
    path = RULES_ROOT / schema / f"{obj}.toml"
    assert path.exists(), f"{name} declares no rules: add {path.relative_to(RULES_ROOT.parent.parent)}"
    return tomllib.loads(path.read_text())["rule"]


def test_every_rules_file_belongs_to_an_object_of_both_dialects() -> None:
    declared = {f"{p.parent.name}.{p.stem}" for p in RULES_ROOT.rglob("*.toml")}
    assert declared <= set(BOTH), declared - set(BOTH)


@pytest.mark.parametrize("name", BOTH)
def test_both_versions_implement_the_declared_rules(name: str) -> None:
    rules = _rules(name)
    assert rules, f"{name}: an empty rule list"
    missing = []
    for dialect in SUPPORTED_DIALECTS:
        text = re.sub(r"--[^\n]*", "", _text(name, dialect))
        for rule in rules:
            if not re.search(rule.get(dialect, rule.get("evidence", "(?!)")), text):
                missing.append(f"{dialect} lacks {rule['name']} ({rule['says']})")
            if "absent" in rule and re.search(rule["absent"], text):
                missing.append(f"{dialect} still has what {rule['name']} replaced")
    assert not missing, missing
