"""The dynamic SQL a T-SQL procedure builds, generated without a SQL Server from representative inputs.

Three procedures build statements as strings and run them with ``sp_executesql`` (merge_scd2,
close_vanished_keys, add_inferred_members): a parser sees only string literals there. This module runs
the part of such a procedure that builds the strings: its variable declarations and assignments, the rows
it inserts into its table variables (``VALUES``), ``WHILE`` loops, ``IF``s it can decide, and the scalar
subqueries over its table variables (``STRING_AGG``, ``MAX``), with the functions they use (``QUOTENAME``,
``CONCAT``, ``REPLACE``, ``PARSENAME``, ``CAST``, ``CASE``, ``OBJECT_ID`` of the objects the caller says
exist). Rows the procedure reads from the catalog (``sys.columns``) or parses from its parameters
(``STRING_SPLIT``, ``OPENJSON``) are the test's representative inputs. What the procedure does to real
tables is not run. Anything else it meets fails loudly (``Unsupported``), so a new construct in a
procedure is noticed, not skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlfluff.core.parser import BaseSegment
from tsql_names import parse


class Unsupported(Exception):
    """The interpreter met a construct it does not run."""


class _Unknown:
    """A value only a SQL Server would know (@@ROWCOUNT, SESSION_CONTEXT): fine unless a string needs it."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()
Row = dict[str, Any]


@dataclass
class Run:
    """One run of a procedure's string building: its arguments, table-variable rows and existing objects."""

    arguments: dict[str, Any]
    table_rows: dict[str, list[Row]] = field(default_factory=dict)  # representative rows, by @name
    existing: set[str] = field(default_factory=set)  # objects OBJECT_ID finds (lower case, e.g. tempdb..#t)
    variables: dict[str, Any] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)  # every string given to sp_executesql, in order


def executed_sql(procedure_sql: str, run: Run) -> list[str]:
    """Every statement text the procedure passes to ``sp_executesql`` for ``run``'s inputs."""
    tree = parse(procedure_sql)
    procedure = next(tree.recursive_crawl("create_procedure_statement"))
    for parameter in procedure.recursive_crawl("parameter", no_recursive_seg_type="procedure_statement"):
        run.variables.setdefault(parameter.raw.lower(), run.arguments.get(parameter.raw.lower(), None))
    body = next(s for s in procedure.segments if s.is_type("procedure_statement"))
    _statements(body, run)
    return run.executed


def _meaningful(segment: BaseSegment) -> list[BaseSegment]:
    return [
        s
        for s in segment.segments
        if not (s.is_whitespace or s.is_meta or s.is_type("comment", "newline", "inline_comment"))
    ]


def _statements(segment: BaseSegment, run: Run) -> None:
    for child in _meaningful(segment):
        if child.is_type("statement", "procedure_statement") or child.is_type("begin_end_block"):
            _statements(child, run)
        else:
            _statement(child, run)


def _statement(statement: BaseSegment, run: Run) -> None:
    kind = statement.get_type()
    if kind == "declare_segment":
        _declare(statement, run)
    elif kind == "set_local_variable_segment":
        parts = _meaningful(statement)
        name = next(p for p in parts if p.is_type("parameter")).raw.lower()
        run.variables[name] = _value(parts[-1], run, {})
    elif kind == "insert_statement":
        _insert(statement, run)
    elif kind == "select_statement" and any(True for _ in statement.recursive_crawl("select_variable_assignment")):
        _select_into_variables(statement, run)
    elif kind == "while_statement":
        parts = _meaningful(statement)
        condition, body = parts[1], parts[2]
        for _ in range(10_000):
            if _value(condition, run, {}) is not True:
                return
            _statements(body, run)
        raise Unsupported("a WHILE loop that does not end")
    elif kind == "if_then_statement":
        _if(statement, run)
    elif kind == "execute_script_statement":
        _execute(statement, run)
    # anything else (SET NOCOUNT, THROW, statements on real tables, result sets) builds no string


def _declare(statement: BaseSegment, run: Run) -> None:
    parts = _meaningful(statement)
    name = next(p for p in parts if p.is_type("parameter")).raw.lower()
    if any(p.raw.upper() == "TABLE" for p in parts):
        run.table_rows.setdefault(name, [])
        return
    equals = [i for i, p in enumerate(parts) if p.raw == "="]
    run.variables[name] = _value(parts[equals[0] + 1], run, {}) if equals else None


def _insert(statement: BaseSegment, run: Run) -> None:
    target = next(statement.recursive_crawl("table_reference", "parameter")).raw.lower()
    if not target.startswith("@"):
        return  # a real table: not the procedure's string building
    values = next(statement.recursive_crawl("values_clause"), None)
    if values is None:
        if target not in run.table_rows or not run.table_rows[target]:
            raise Unsupported(f"{target} is filled by a query: give its rows as a representative input")
        return  # filled from the catalog or a parameter: the representative rows stand in
    columns = [c.raw.lower() for b in statement.segments if b.is_type("bracketed") for c in
               b.recursive_crawl("column_reference")]  # fmt: skip
    for row in (b for b in values.segments if b.is_type("bracketed")):
        items = [e for e in _meaningful(row) if not e.is_type("start_bracket", "end_bracket", "comma")]
        values_of_row = (_value(e, run, {}) for e in items)
        run.table_rows.setdefault(target, []).append(dict(zip(columns, values_of_row, strict=True)))


def _select_into_variables(statement: BaseSegment, run: Run) -> None:
    rows = _rows(statement, run, {})
    assignments = list(statement.recursive_crawl("select_variable_assignment"))
    for row in rows[-1:]:  # SQL Server assigns from the last row read
        for assignment in assignments:
            parts = _meaningful(assignment)
            run.variables[parts[0].raw.lower()] = _value(parts[-1], run, row)


def _if(statement: BaseSegment, run: Run) -> None:
    clauses = [s for s in statement.segments if s.is_type("if_clause")]
    bodies = [s for s in statement.segments if s.is_type("statement")]
    for clause, body in zip(clauses, bodies, strict=False):
        condition = _meaningful(clause)[-1]
        if _value(condition, run, {}) is True:
            _statements(body, run)
            return
    if len(bodies) > len(clauses):  # ELSE
        _statements(bodies[-1], run)


def _execute(statement: BaseSegment, run: Run) -> None:
    parts = _meaningful(statement)
    called = next((p for p in parts if p.is_type("object_reference")), None)
    if called is None or called.raw.lower().split(".")[-1] != "sp_executesql":
        return
    first = next(p for p in parts[parts.index(called) + 1 :] if not p.is_type("comma"))
    text = _value(first, run, {})
    if not isinstance(text, str):
        raise Unsupported(f"sp_executesql is given {text!r}, not a string the inputs determine")
    run.executed.append(text)


def calls(sql: str, procedure: str) -> list[dict[str, Any]]:
    """The named arguments of every ``EXEC procedure`` in ``sql``: literals as values, the rest UNKNOWN."""
    found = []
    for statement in parse(sql).recursive_crawl("execute_script_statement"):
        called = next(statement.recursive_crawl("object_reference"), None)
        if called is None or called.raw.lower() != procedure:
            continue
        parts = _meaningful(statement)
        arguments: dict[str, Any] = {}
        for i, part in enumerate(parts[:-2]):
            if part.is_type("parameter") and parts[i + 1].raw == "=":
                try:  # a variable of the caller's has no value here: UNKNOWN
                    arguments[part.raw.lower()] = _value(parts[i + 2], Run({}), {})
                except Unsupported:
                    arguments[part.raw.lower()] = UNKNOWN
        found.append(arguments)
    return found


# --- values --------------------------------------------------------------------------------------------


def _literal(raw: str) -> str:
    text = raw[1:] if raw[:1] in "Nn" else raw
    return text[1:-1].replace("''", "'")


def _rows(select: BaseSegment, run: Run, row: Row) -> list[Row]:
    """The rows of a one-table-variable FROM, filtered by its WHERE."""
    source = next(select.recursive_crawl("from_clause"), None)
    if source is None:
        return [row]
    names = sorted({t.raw.lower() for t in source.recursive_crawl("table_reference", "parameter")})
    if len(names) != 1 or names[0] not in run.table_rows:
        raise Unsupported(f"a query over {names}: only one table variable of the procedure can be read")
    rows = [{**row, **r} for r in run.table_rows[names[0]]]
    where = next(select.recursive_crawl("where_clause"), None)
    if where is not None:
        condition = _meaningful(where)[-1]
        rows = [r for r in rows if _value(condition, run, r) is True]
    return rows


def _aggregate(select: BaseSegment, run: Run, row: Row) -> Any:
    """``(SELECT STRING_AGG(expr, sep) [WITHIN GROUP (ORDER BY col)] FROM @t [WHERE ...])`` or ``MAX(col)``."""
    element = next(select.recursive_crawl("select_clause_element"))
    function = next(element.recursive_crawl("function"))
    name = function.segments[0].raw.upper()
    arguments = _arguments(function)
    rows = _rows(select, run, row)
    order = next(function.recursive_crawl("orderby_clause"), None) or next(
        (o for w in element.recursive_crawl("within_group_clause") for o in w.recursive_crawl("orderby_clause")), None
    )
    if order is not None:
        key = next(order.recursive_crawl("column_reference")).raw.lower()
        rows = sorted(rows, key=lambda r: r[key])
    if name == "STRING_AGG":
        separator = _value(arguments[1], run, row)
        pieces = [_value(arguments[0], run, r) for r in rows]
        return separator.join(pieces) if rows else None
    if name == "MAX":
        found = [_value(arguments[0], run, r) for r in rows]
        return max(found) if found else None
    raise Unsupported(f"aggregate {name}")


def _arguments(function: BaseSegment) -> list[BaseSegment]:
    contents = next(s for s in function.segments if s.is_type("function_contents"))
    bracketed = next(s for s in contents.segments if s.is_type("bracketed"))
    return [s for s in _meaningful(bracketed) if not s.is_type("start_bracket", "end_bracket", "comma", "keyword",
                                                                "data_type")]  # fmt: skip


def _function(function: BaseSegment, run: Run, row: Row) -> Any:
    name = function.segments[0].raw.upper().split(".")[-1]
    if name == "CAST" or name == "CONVERT":
        arguments = _arguments(function)
        return _value(arguments[-1] if name == "CONVERT" else arguments[0], run, row)
    values = [_value(a, run, row) for a in _arguments(function)]
    if name == "QUOTENAME":
        return None if values[0] is None else "[" + str(values[0]).replace("]", "]]") + "]"
    if name == "CONCAT":
        return "".join("" if v is None else str(v) for v in values)
    if name == "REPLACE":
        return None if values[0] is None else str(values[0]).replace(values[1], values[2])
    if name in ("LTRIM", "RTRIM"):
        return values[0].lstrip() if name == "LTRIM" else values[0].rstrip()
    if name == "LEFT":
        return None if values[0] is None else str(values[0])[: values[1]]
    if name == "PARSENAME":
        parts = str(values[0]).split(".")[::-1]
        return parts[values[1] - 1] if values[1] <= len(parts) else None
    if name == "OBJECT_ID":
        return 1 if str(values[0]).lower() in run.existing else None
    if name in ("ISNULL", "COALESCE"):
        return next((v for v in values if v is not None), None)
    if name in ("TRY_CAST", "SESSION_CONTEXT"):
        return UNKNOWN
    raise Unsupported(f"function {name}")


def _case(case: BaseSegment, run: Run, row: Row) -> Any:
    for clause in case.segments:
        parts = _meaningful(clause)
        if clause.is_type("when_clause"):
            then = next(i for i, p in enumerate(parts) if p.raw.upper() == "THEN")
            if _value(parts[then - 1], run, row) is True:
                return _value(parts[then + 1], run, row)
        elif clause.is_type("else_clause"):
            return _value(parts[-1], run, row)
    return None


def _value(segment: BaseSegment, run: Run, row: Row) -> Any:
    kind = segment.get_type()
    if kind == "quoted_literal":
        return _literal(segment.raw)
    if kind in ("integer_literal", "numeric_literal"):
        return int(segment.raw) if kind == "integer_literal" else float(segment.raw)
    if kind == "null_literal":
        return None
    if kind == "parameter":
        return run.variables.get(segment.raw.lower(), UNKNOWN)
    if kind == "system_variable":
        return UNKNOWN
    if kind == "column_reference":
        column = segment.raw.lower().split(".")[-1].strip("[]")
        if column not in row:
            raise Unsupported(f"column {segment.raw} outside a row of a table variable")
        return row[column]
    if kind == "function":
        return _function(segment, run, row)
    if kind == "case_expression":
        return _case(segment, run, row)
    if kind == "select_statement":  # a scalar subquery
        return _aggregate(segment, run, row)
    if kind == "bracketed":
        inner = [s for s in _meaningful(segment) if not s.is_type("start_bracket", "end_bracket")]
        if len(inner) == 1:
            return _value(inner[0], run, row)
        return _expression(inner, run, row)
    if kind == "expression":
        return _expression(_meaningful(segment), run, row)
    raise Unsupported(f"{kind}: {segment.raw[:60]}")


_PRECEDENCE = {"OR": 1, "AND": 2, "=": 3, "<>": 3, "<": 3, "<=": 3, ">": 3, ">=": 3, "IS": 3, "+": 4, "-": 4}


def _expression(parts: list[BaseSegment], run: Run, row: Row) -> Any:
    """Operands and binary operators, evaluated by precedence (IS [NOT] NULL as a postfix comparison)."""
    tokens: list[Any] = []
    i = 0
    while i < len(parts):
        part = parts[i]
        text = part.raw.upper()
        if text == "IS":
            negated = parts[i + 1].raw.upper() == "NOT"
            tokens += ["IS", ("not null" if negated else "null")]
            i += 3 if negated else 2
            continue
        if part.is_type("binary_operator", "comparison_operator") or text in ("AND", "OR"):
            tokens.append(text.replace(" ", ""))
        else:
            tokens.append(("value", part))
        i += 1
    return _climb(tokens, run, row)


def _climb(tokens: list[Any], run: Run, row: Row) -> Any:
    values: list[Any] = []
    operators: list[str] = []

    def reduce() -> None:
        operator = operators.pop()
        right, left = values.pop(), values.pop()
        values.append(_apply(operator, left, right))

    for token in tokens:
        if isinstance(token, tuple) and token[0] == "value":
            values.append(_value(token[1], run, row))
        elif token in ("null", "not null"):
            values.append(token)
        else:
            if token not in _PRECEDENCE:
                raise Unsupported(f"operator {token}")
            while operators and _PRECEDENCE[operators[-1]] >= _PRECEDENCE[token]:
                reduce()
            operators.append(token)
    while operators:
        reduce()
    if len(values) != 1:
        raise Unsupported(f"expression {tokens}")
    return values[0]


def _apply(operator: str, left: Any, right: Any) -> Any:
    if operator == "IS":
        return (left is None) == (right == "null")
    if operator in ("AND", "OR"):
        return (left is True and right is True) if operator == "AND" else (left is True or right is True)
    if left is UNKNOWN or right is UNKNOWN:
        return UNKNOWN
    if left is None or right is None:
        return None
    if operator == "+":
        return str(left) + str(right) if isinstance(left, str) or isinstance(right, str) else left + right
    if operator == "-":
        return left - right
    compare = {"=": left == right, "<>": left != right, "<": left < right, "<=": left <= right, ">": left > right,
               ">=": left >= right}  # fmt: skip
    return compare[operator]
