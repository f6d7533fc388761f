"""Name resolution for T-SQL without a SQL Server: every table, column and procedure a statement names must
exist in the schema the offline migration script creates for SQL Server.

No SQL Server runs here, so the project's T-SQL is parsed (sqlfluff's T-SQL grammar) and its names are
resolved the way SQL Server binds them: a column qualified by an alias belongs to that alias's table, an
unqualified one to one of the tables of its own query or, failing that, of an enclosing one (a correlated
subquery); ORDER BY may name the select list's aliases; CTEs, derived tables, ``VALUES`` lists, temp tables
(``SELECT ... INTO #t``), table variables (``DECLARE @t TABLE``), ``STRING_SPLIT`` and ``OPENJSON ... WITH``
bring their own columns, and the catalog views the procedures read have their documented ones. What cannot be
known offline (another catalog view, a table-valued function without a column list) resolves any column: the
check never invents a problem it cannot prove.

The schema is read from the script itself (``CREATE TABLE``, ``ALTER TABLE ... ADD`` / ``DROP COLUMN``,
``DROP TABLE``, and the procedures, functions and views it creates), so it is the schema a DBA's
``sqlcmd`` run of ``pmw upgrade --sql --dialect mssql`` leaves, not a copy kept by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

from sqlfluff.core import FluffConfig, Linter
from sqlfluff.core.linter import ParsedString
from sqlfluff.core.parser import BaseSegment

Columns = frozenset[str] | None  # None: the columns cannot be known offline (any name resolves)
QUERY_TYPES = ("select_statement", "set_expression", "with_compound_statement", "insert_statement",
               "update_statement", "delete_statement", "merge_statement")  # fmt: skip
IDENTIFIER_TYPES = ("naked_identifier", "quoted_identifier", "hash_identifier", "parameter")
# columns a table-valued system function returns
FUNCTION_COLUMNS = {"string_split": frozenset({"value", "ordinal"}), "openjson": frozenset({"key", "value", "type"})}
SYSTEM_SCHEMAS = ("sys", "information_schema", "tempdb")
# the catalog views the procedures read, with their documented columns (SQL Server 2022)
CATALOG_VIEWS = {
    "sys.time_zone_info": frozenset({"name", "current_utc_offset", "is_currently_dst"}),
    "sys.columns": frozenset(
        {
            "object_id",
            "name",
            "column_id",
            "system_type_id",
            "user_type_id",
            "max_length",
            "precision",
            "scale",
            "collation_name",
            "is_nullable",
            "is_ansi_padded",
            "is_rowguidcol",
            "is_identity",
            "is_computed",
            "is_filestream",
            "is_replicated",
            "is_non_sql_subscribed",
            "is_merge_published",
            "is_dts_replicated",
            "is_xml_document",
            "xml_collection_id",
            "default_object_id",
            "rule_object_id",
            "is_sparse",
            "is_column_set",
            "generated_always_type",
            "generated_always_type_desc",
            "encryption_type",
            "encryption_type_desc",
            "encryption_algorithm_name",
            "column_encryption_key_id",
            "column_encryption_key_database_name",
            "is_hidden",
            "is_masked",
            "graph_type",
            "graph_type_desc",
            "is_data_deletion_filter_column",
            "ledger_view_column_type",
            "ledger_view_column_type_desc",
            "is_dropped_ledger_column",
        }
    ),
}


@dataclass(frozen=True)
class Problem:
    line: int
    name: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.name}: {self.reason}"


@dataclass
class Schema:
    """What the offline script leaves: tables (and views) with their columns, and routines by name."""

    tables: dict[str, Columns] = field(default_factory=dict)
    routines: set[str] = field(default_factory=set)


@cache
def parsed(sql: str) -> ParsedString:
    """sqlfluff's T-SQL parse of ``sql``, kept for the session: parsing the project's T-SQL takes most of a minute,
    and the parse tests and the name tests read the same texts."""
    return Linter(config=FluffConfig(overrides={"dialect": "tsql"})).parse_string(sql)


def parse(sql: str) -> BaseSegment:
    tree = parsed(sql).tree
    assert tree is not None, parsed(sql).violations
    return tree


def _name(segment: BaseSegment) -> str:
    """An identifier as SQL Server compares it: brackets and quotes off, case folded."""
    raw = segment.raw
    if raw[:1] in '["' and raw[-1:] in ']"':
        raw = raw[1:-1]
    return raw.lower()


def _parts(reference: BaseSegment) -> list[str]:
    return [_name(s) for s in reference.segments if s.is_type(*IDENTIFIER_TYPES)]


def _line(segment: BaseSegment) -> int:
    return segment.pos_marker.line_no if segment.pos_marker else 0


def _children(segment: BaseSegment, *types: str) -> list[BaseSegment]:
    return [s for s in segment.segments if s.is_type(*types)]


def _first(segment: BaseSegment, *types: str) -> BaseSegment | None:
    found = _children(segment, *types)
    return found[0] if found else None


def _walk_outside_queries(segment: BaseSegment) -> Iterator[BaseSegment]:
    """Every segment under ``segment`` that is not inside a query nested in it (those have scopes of their own);
    nested queries themselves are yielded, not entered."""
    for child in segment.segments:
        yield child
        if not child.is_type(*QUERY_TYPES):
            yield from _walk_outside_queries(child)


# --- the schema the offline script creates ------------------------------------------------------------


_STATEMENT = re.compile(
    r"^(?:(?P<create>CREATE TABLE) (?P<table>\S+) \("
    r"|ALTER TABLE (?P<altered>\S+) (?:ADD (?P<added>\w+) |DROP COLUMN (?P<dropped>\w+))"
    r"|DROP TABLE (?P<gone>\S+?);"
    r"|CREATE (?:OR ALTER )?(?P<kind>PROCEDURE|FUNCTION|VIEW) (?P<routine>[\w.\[\]]+)"
    r"|DROP (?:PROCEDURE|FUNCTION|VIEW) (?:IF EXISTS )?(?P<dropped_routine>[\w.\[\]]+))",
    re.M,
)


def _parenthesised(text: str, start: int) -> str:
    """The text inside the parenthesis opening at ``text[start]``."""
    depth = 0
    for i in range(start, len(text)):
        depth += text[i] == "("
        depth -= text[i] == ")"
        if depth == 0:
            return text[start + 1 : i]
    raise ValueError(f"unbalanced parenthesis at {start}")


def split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside parentheses, each piece stripped (empty ones left out)."""
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    return [piece.strip() for piece in pieces if piece.strip()]


def _table_columns(body: str) -> frozenset[str]:
    words = [piece.split()[0] for piece in split_top_level(body)]
    return frozenset(
        w.strip('[]"').lower()
        for w in words
        if w.upper() not in {"CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "INDEX"}
    )


def schema_from_script(script: str) -> Schema:
    """Replay the script's DDL, statement by statement, into the schema it leaves."""
    schema = Schema()
    for batch in re.split(r"^GO\s*$", script, flags=re.M):
        for m in _STATEMENT.finditer(batch):
            if m["create"]:
                schema.tables[m["table"].lower()] = _table_columns(_parenthesised(batch, m.end() - 1))
            elif m["altered"]:
                before = schema.tables[m["altered"].lower()] or frozenset()
                if m["added"]:
                    schema.tables[m["altered"].lower()] = before | {m["added"].lower()}
                else:
                    schema.tables[m["altered"].lower()] = before - {m["dropped"].lower()}
            elif m["gone"]:
                schema.tables.pop(m["gone"].lower(), None)
            elif m["dropped_routine"]:
                name = m["dropped_routine"].replace("[", "").replace("]", "").lower()
                schema.routines.discard(name)
                schema.tables.pop(name, None)
            else:
                name = m["routine"].replace("[", "").replace("]", "").lower()
                schema.routines.add(name)
                if m["kind"] == "VIEW":
                    schema.tables[name] = view_columns(batch[m.start() :], schema)
    return schema


def view_columns(sql: str, schema: Schema) -> Columns:
    view = next(parse(sql).recursive_crawl("create_view_statement"))
    query = next(s for s in view.segments if s.is_type(*QUERY_TYPES))
    return Resolver(schema).output_columns(query, [], {})


def _select_list_names(query: BaseSegment) -> list[str]:
    """A query's column names in order: each select-list element's alias, or the column it names."""
    while not query.is_type("select_statement"):  # WITH ... SELECT, or the first SELECT of a UNION
        query = next(s for s in query.segments if s.is_type(*QUERY_TYPES))
    clause = _first(query, "select_clause")
    assert clause is not None
    names = []
    for element in _children(clause, "select_clause_element"):
        alias = _first(element, "alias_expression")
        identifier = _first(alias, *IDENTIFIER_TYPES) if alias is not None else None
        reference = _first(element, "column_reference")
        if identifier is not None:
            names.append(_name(identifier))
        elif reference is not None:
            names.append(_parts(reference)[-1])
        else:
            raise AssertionError(f"a column without a name: {element.raw[:80]}")
    return names


def view_column_names(sql: str) -> list[str]:
    """A view's column names in order."""
    view = next(parse(sql).recursive_crawl("create_view_statement"))
    return _select_list_names(next(s for s in view.segments if s.is_type(*QUERY_TYPES)))


def closing_result_columns(sql: str) -> list[str]:
    """The column names of the result set a procedure ends with (its last SELECT that reads into no table and
    assigns no variable, at the top of its body), or [] when it ends with none."""
    procedure = next(parse(sql).recursive_crawl("create_procedure_statement"))
    body = next(procedure.recursive_crawl("begin_end_block"))
    selects = [s for statement in _children(body, "statement") for s in _children(statement, "select_statement")]
    results = [s for s in selects if _first(s, "into_table_clause") is None
               and not any(True for _ in s.recursive_crawl("select_variable_assignment"))]  # fmt: skip
    return _select_list_names(results[-1]) if results else []


# --- resolution ----------------------------------------------------------------------------------------


Scope = dict[str, Columns]  # alias (or table name) -> its columns


class Resolver:
    """Resolves the names of one T-SQL text (a procedure, function or view) against a schema."""

    def __init__(self, schema: Schema, temp: dict[str, Columns] | None = None) -> None:
        self.schema = schema
        # #temp tables and @table variables: the caller's (for dynamic SQL), then the text's own
        self.temp: dict[str, Columns] = dict(temp or {})
        self.problems: list[Problem] = []
        self.bound: list[BaseSegment] = []  # the references bound to a table whose columns are known

    def check(self, sql: str) -> list[Problem]:
        tree = parse(sql)
        self._collect_table_variables(tree)
        self._visit(tree, [], {})
        return self.problems

    # the text's own tables

    def _collect_table_variables(self, tree: BaseSegment) -> None:
        for declare in tree.recursive_crawl("declare_segment"):
            variable = _first(declare, "parameter")
            definitions = [d for b in _children(declare, "bracketed") for d in _children(b, "column_definition")]
            if variable is not None and _first(declare, "keyword") and "TABLE" in declare.raw.upper().split("(")[0]:
                self.temp[_name(variable)] = frozenset(_name(d.segments[0]) for d in definitions)

    # traversal

    def _visit(self, segment: BaseSegment, scopes: list[Scope], ctes: dict[str, Columns]) -> None:
        for child in segment.segments:
            if child.is_type(*QUERY_TYPES):
                self._query(child, scopes, ctes)
            elif child.is_type("execute_script_statement"):
                self._execute(child)
                self._visit(child, scopes, ctes)
            elif child.is_type("function_name"):
                self._function(child)
            else:
                self._visit(child, scopes, ctes)

    def _query(self, query: BaseSegment, scopes: list[Scope], ctes: dict[str, Columns]) -> Columns:
        """Check one query and everything nested in it; returns its output columns."""
        kind = query.get_type()
        if kind == "with_compound_statement":
            ctes = dict(ctes)
            for cte in _children(query, "common_table_expression"):
                name = _name(_first(cte, *IDENTIFIER_TYPES) or cte)
                body = next(s for b in _children(cte, "bracketed") for s in b.segments if s.is_type(*QUERY_TYPES))
                listed = _first(cte, "cte_column_list")
                columns = self._query(body, scopes, ctes)
                ctes[name] = frozenset(_parts(listed.segments[0])) if listed else columns  # type: ignore[union-attr]
                if listed is not None:
                    ctes[name] = frozenset(_name(s) for s in listed.recursive_crawl(*IDENTIFIER_TYPES))
            main = next(s for s in query.segments if s.is_type(*QUERY_TYPES))
            return self._query(main, scopes, ctes)
        if kind == "set_expression":
            outputs = [self._query(s, scopes, ctes) for s in query.segments if s.is_type(*QUERY_TYPES)]
            return outputs[0] if outputs else None
        if kind == "select_statement":
            return self._select(query, scopes, ctes)
        if kind == "insert_statement":
            return self._insert(query, scopes, ctes)
        if kind == "update_statement":
            return self._update(query, scopes, ctes)
        if kind == "delete_statement":
            return self._delete(query, scopes, ctes)
        return self._merge(query, scopes, ctes)

    # sources

    def _table(self, reference: BaseSegment, ctes: dict[str, Columns]) -> Columns:
        parts = _parts(reference)
        name = ".".join(parts)
        if len(parts) == 1 and name in ctes:
            return ctes[name]
        if name[:1] in "#@":
            if name not in self.temp:
                self.problems.append(Problem(_line(reference), reference.raw, "no such temp table or table variable"))
                return None
            return self.temp[name]
        if parts and parts[0] in SYSTEM_SCHEMAS:
            return CATALOG_VIEWS.get(name)
        if name not in self.schema.tables:
            self.problems.append(Problem(_line(reference), reference.raw, "no such table or view"))
            return None
        return self.schema.tables[name]

    def _alias(self, element: BaseSegment) -> tuple[str | None, list[str]]:
        alias = _first(element, "alias_expression")
        if alias is None:
            return None, []
        identifier = _first(alias, *IDENTIFIER_TYPES)
        listed = [_name(s) for s in alias.recursive_crawl("naked_identifier", "quoted_identifier")][1:]
        return (_name(identifier) if identifier else None), listed

    def _source(self, element: BaseSegment, scope: Scope, scopes: list[Scope], ctes: dict[str, Columns]) -> None:
        """Add one FROM / JOIN / USING element to ``scope``."""
        alias, listed = self._alias(element)
        expression = _first(element, "table_expression")
        if expression is None:  # "(VALUES ...) AS v(a, b)" comes bracketed
            bracketed = _first(element, "bracketed")
            expression = _first(bracketed, "table_expression") if bracketed else None
        inner = expression.segments[0] if expression is not None and expression.segments else element
        columns: Columns
        if inner.is_type("table_reference"):
            columns = self._table(inner, ctes)
            name = alias or _parts(inner)[-1]
            if alias is None and len(_parts(inner)) > 1:
                scope[".".join(_parts(inner))] = columns
        elif inner.is_type("bracketed"):
            query = next((s for s in inner.segments if s.is_type(*QUERY_TYPES)), None)
            columns = self._query(query, [scope, *scopes], ctes) if query is not None else None
            name = alias or ""
        elif inner.is_type("values_clause"):  # its columns are the alias's list; its rows may use earlier sources
            self._check_region(inner, [scope, *scopes], ctes)
            columns, name = None, alias or ""
        elif inner.is_type("openjson_segment"):
            with_clause = _first(inner, "openjson_with_clause")
            columns = frozenset({"key", "value", "type"})  # OPENJSON's default schema
            if with_clause is not None:
                columns = frozenset(_name(s) for b in _children(with_clause, "bracketed")
                                    for s in _children(b, "naked_identifier", "quoted_identifier"))  # fmt: skip
            self._visit(inner, [scope, *scopes], ctes)
            name = alias or "openjson"
        elif inner.is_type("function"):
            function = _name(inner.segments[0])
            columns = FUNCTION_COLUMNS.get(function.split(".")[-1])
            self._visit(inner, [scope, *scopes], ctes)
            name = alias or function
        else:
            columns, name = None, alias or ""
        if listed:
            columns = frozenset(listed)
        scope[name] = columns

    def _from(self, clause: BaseSegment | None, scopes: list[Scope], ctes: dict[str, Columns]) -> Scope:
        scope: Scope = {}
        if clause is None:
            return scope
        for expression in _children(clause, "from_expression"):
            for element in self._elements(expression):
                self._source(element, scope, scopes, ctes)
        return scope

    def _elements(self, expression: BaseSegment) -> Iterator[BaseSegment]:
        for child in expression.segments:
            if child.is_type("from_expression_element"):
                yield child
            elif child.is_type("join_clause") or child.is_type("bracketed"):
                yield from self._elements(child)

    def _join_conditions(self, clause: BaseSegment | None) -> list[BaseSegment]:
        if clause is None:
            return []
        return list(clause.recursive_crawl("join_on_condition", no_recursive_seg_type=list(QUERY_TYPES)))

    # references

    def _resolve(self, reference: BaseSegment, scopes: list[Scope], aliases: frozenset[str] = frozenset()) -> None:
        parts = _parts(reference)
        if not parts or parts[0][:1] == "@":
            return
        column = parts[-1]
        if len(parts) == 1:
            for scope in scopes:
                if any(columns is None for columns in scope.values()):
                    return
                if any(column in columns for columns in scope.values() if columns is not None):
                    self.bound.append(reference)
                    return
                if scope is scopes[0] and column in aliases:
                    return
            self.problems.append(Problem(_line(reference), reference.raw, "no such column in the query's tables"))
            return
        owner = ".".join(parts[:-1])
        for scope in scopes:
            if owner in scope:
                columns = scope[owner]
                if columns is not None:
                    self.bound.append(reference)
                    if column not in columns:
                        self.problems.append(
                            Problem(_line(reference), reference.raw, f"{owner} has no column {column}")
                        )
                return
        self.problems.append(Problem(_line(reference), reference.raw, f"{owner} is not a table of the query"))

    def _check_region(self, segment: BaseSegment, scopes: list[Scope], ctes: dict[str, Columns],
                      aliases: frozenset[str] = frozenset()) -> None:  # fmt: skip
        """Resolve the column references of ``segment`` outside nested queries; check nested queries too."""
        if segment.is_type("column_reference"):
            self._resolve(segment, scopes, aliases)
            return
        for child in _walk_outside_queries(segment):
            if child.is_type(*QUERY_TYPES):
                self._query(child, scopes, ctes)
            elif child.is_type("column_reference"):
                self._resolve(child, scopes, aliases)
            elif child.is_type("function_name"):
                self._function(child)

    # statements

    def output_columns(self, query: BaseSegment, scopes: list[Scope], ctes: dict[str, Columns]) -> Columns:
        return self._query(query, scopes, ctes)

    def _select_list(self, clause: BaseSegment, scope: Scope) -> Columns:
        names: set[str] = set()
        for element in _children(clause, "select_clause_element"):
            alias = _first(element, "alias_expression")
            if alias is not None:
                identifier = _first(alias, *IDENTIFIER_TYPES)
                names.add(_name(identifier) if identifier else "")
            elif (reference := _first(element, "column_reference")) is not None:
                names.add(_parts(reference)[-1])
            elif (wildcard := _first(element, "wildcard_expression")) is not None:
                owner = _parts(wildcard.segments[0])
                sources = [scope.get(".".join(owner))] if owner else list(scope.values())
                if any(columns is None for columns in sources):
                    return None
                names.update(*[columns for columns in sources if columns is not None])
            elif _first(element, "select_variable_assignment") is None:
                names.add("")  # an expression without a name
        return frozenset(names)

    def _select(self, query: BaseSegment, scopes: list[Scope], ctes: dict[str, Columns]) -> Columns:
        scope = self._from(_first(query, "from_clause"), scopes, ctes)
        inner = [scope, *scopes]
        clause = _first(query, "select_clause")
        columns = self._select_list(clause, scope) if clause is not None else frozenset()
        aliases = columns or frozenset()
        for child in query.segments:
            if child.is_type("from_clause"):
                for condition in self._join_conditions(child):
                    self._check_region(condition, inner, ctes)
            elif child.is_type("into_table_clause"):
                target = _first(child, "object_reference")
                if target is not None:
                    self.temp[".".join(_parts(target))] = columns
            elif child.is_type("orderby_clause"):
                self._check_region(child, inner, ctes, aliases)
            elif not child.is_type("from_clause"):
                self._check_region(child, inner, ctes)
        return columns

    def _target_columns(self, segment: BaseSegment, target: Columns, what: str) -> None:
        for reference in segment.recursive_crawl("column_reference"):
            column = _parts(reference)[-1]
            if target is not None:
                self.bound.append(reference)
            if target is not None and column not in target:
                self.problems.append(Problem(_line(reference), reference.raw, f"{what} has no column {column}"))

    def _insert(self, query: BaseSegment, scopes: list[Scope], ctes: dict[str, Columns]) -> Columns:
        reference = _first(query, "table_reference")
        target = self._table(reference, ctes) if reference is not None else None
        for child in query.segments:
            if child.is_type("bracketed") and not any(s.is_type(*QUERY_TYPES) for s in child.segments):
                self._target_columns(child, target, reference.raw if reference else "the target")
            elif child.is_type(*QUERY_TYPES):
                self._query(child, scopes, ctes)
            elif child.is_type("bracketed"):
                for nested in child.segments:
                    if nested.is_type(*QUERY_TYPES):
                        self._query(nested, scopes, ctes)
            elif child.is_type("values_clause", "output_clause"):
                self._check_region(child, scopes, ctes)
        return frozenset()

    def _update(self, query: BaseSegment, scopes: list[Scope], ctes: dict[str, Columns]) -> Columns:
        reference = _first(query, "table_reference")
        scope = self._from(_first(query, "from_clause"), scopes, ctes)
        assert reference is not None
        name = ".".join(_parts(reference))
        if name not in scope:  # UPDATE dim.x SET ... without FROM: the target is the only table
            scope[name.split(".")[-1]] = scope[name] = self._table(reference, ctes)
        target = scope[name]
        inner = [scope, *scopes]
        for clause in query.recursive_crawl("set_clause", no_recursive_seg_type=list(QUERY_TYPES)):
            left = _first(clause, "column_reference")
            if left is not None:
                self._target_columns(left, target, reference.raw)
            for child in clause.segments:
                if child is not left:
                    self._check_region(child, inner, ctes)
        self._check_joins_and_where(query, inner, ctes)
        return frozenset()

    def _check_joins_and_where(self, query: BaseSegment, inner: list[Scope], ctes: dict[str, Columns]) -> None:
        """An UPDATE's or DELETE's join conditions, WHERE and OUTPUT, in the scope of its target and FROM."""
        for child in query.segments:
            if child.is_type("from_clause"):
                for condition in self._join_conditions(child):
                    self._check_region(condition, inner, ctes)
            elif child.is_type("where_clause", "output_clause"):
                self._check_region(child, inner, ctes)

    def _delete(self, query: BaseSegment, scopes: list[Scope], ctes: dict[str, Columns]) -> Columns:
        reference = _first(query, "table_reference")
        scope = self._from(_first(query, "from_clause"), scopes, ctes)
        if reference is not None:
            name = ".".join(_parts(reference))
            if name not in scope:
                scope[name.split(".")[-1]] = scope[name] = self._table(reference, ctes)
        inner = [scope, *scopes]
        self._check_joins_and_where(query, inner, ctes)
        return frozenset()

    def _merge(self, query: BaseSegment, scopes: list[Scope], ctes: dict[str, Columns]) -> Columns:
        parts = [s for s in query.segments if not (s.is_whitespace or s.is_meta or s.is_type("comment"))]
        references = _children(query, "table_reference")
        target = self._table(references[0], ctes)
        scope: Scope = {}
        scope[self._alias_after(parts, references[0]) or _parts(references[0])[-1]] = target
        scope["inserted"] = scope["deleted"] = target
        # USING: a table, or a bracketed query, with its alias
        source = parts[next(i for i, s in enumerate(parts) if s.raw.upper() == "USING") + 1]
        source_alias = self._alias_after(parts, source)
        if source.is_type("table_reference"):
            scope[source_alias or _parts(source)[-1]] = self._table(source, ctes)
        else:
            nested = next((s for s in source.recursive_crawl(*QUERY_TYPES)), None)
            scope[source_alias or ""] = self._query(nested, scopes, ctes) if nested is not None else None
        inner = [scope, *scopes]
        for condition in _children(query, "join_on_condition"):
            self._check_region(condition, inner, ctes)
        for match in _children(query, "merge_match"):
            for clause in match.segments:
                self._merge_clause(clause, target, references[0].raw, inner, ctes)
        return frozenset()

    @staticmethod
    def _alias_after(parts: list[BaseSegment], segment: BaseSegment) -> str | None:
        """The alias given to ``segment`` (past any table hint such as WITH (HOLDLOCK))."""
        for following in parts[parts.index(segment) + 1 :]:
            if following.is_type("alias_expression"):
                identifier = _first(following, *IDENTIFIER_TYPES)
                return _name(identifier) if identifier is not None else None
            if following.is_type("keyword") and following.raw.upper() in ("USING", "ON"):
                return None
        return None

    def _merge_clause(self, clause: BaseSegment, target: Columns, target_name: str, inner: list[Scope],
                      ctes: dict[str, Columns]) -> None:  # fmt: skip
        if clause.is_type("output_clause"):
            self._output(clause, inner)
            return
        for child in clause.segments:
            if child.is_type("merge_update_clause"):
                for set_clause in child.recursive_crawl("set_clause"):
                    left = _first(set_clause, "column_reference")
                    if left is not None:
                        self._target_columns(left, target, target_name)
                    for part in set_clause.segments:
                        if part is not left:
                            self._check_region(part, inner, ctes)
            elif child.is_type("merge_insert_clause"):
                lists = _children(child, "bracketed")
                if lists:
                    self._target_columns(lists[0], target, target_name)
                for values in lists[1:]:
                    self._check_region(values, inner, ctes)
            else:
                self._check_region(child, inner, ctes)

    def _output(self, clause: BaseSegment, scopes: list[Scope]) -> None:
        """OUTPUT inserted.x, deleted.y, $action INTO @t (columns): the pseudo-tables are the target's."""
        tokens = [s for s in clause.segments if not s.is_whitespace and not s.is_meta]
        for i, token in enumerate(tokens[:-2]):
            if token.raw.lower() in {"inserted", "deleted"} and tokens[i + 1].raw == ".":
                columns = scopes[0].get(token.raw.lower())
                column = _name(tokens[i + 2])
                if columns is not None and column not in columns:
                    self.problems.append(
                        Problem(_line(token), f"{token.raw}.{column}", f"the target has no column {column}")
                    )
        into = [i for i, t in enumerate(tokens) if t.raw.upper() == "INTO"]
        if into:
            table = tokens[into[0] + 1]
            columns = (
                self.temp.get(_name(table)) if table.raw[:1] in "#@" else self.schema.tables.get(table.raw.lower())
            )
            for listed in tokens[into[0] + 2 :]:
                if listed.is_type("bracketed"):
                    self._target_columns(listed, columns, table.raw)
        for reference in clause.recursive_crawl("column_reference"):
            if not any(reference in b.recursive_crawl("column_reference") for b in _children(clause, "bracketed")):
                self._resolve(reference, scopes)

    def _execute(self, statement: BaseSegment) -> None:
        reference = _first(statement, "object_reference")
        if reference is None:
            return
        name = ".".join(_parts(reference))
        if name.startswith("sp_") or name.split(".")[0] in SYSTEM_SCHEMAS or name[:1] == "@":
            return
        if name not in self.schema.routines:
            self.problems.append(Problem(_line(reference), reference.raw, "no such procedure"))

    def _function(self, function_name: BaseSegment) -> None:
        parts = [_name(s) for s in function_name.segments if s.is_type("naked_identifier", "quoted_identifier")]
        if len(parts) >= 1 and "." in function_name.raw:  # a user function is always schema-qualified
            name = ".".join([*parts, _name(function_name.segments[-1])]) if len(parts) == 1 else ".".join(parts)
            if name not in self.schema.routines:
                self.problems.append(Problem(_line(function_name), function_name.raw, "no such function"))


def unresolved(sql: str, schema: Schema, temp: dict[str, Columns] | None = None) -> list[Problem]:
    """The names in ``sql`` (one procedure, function or view, or a batch of dynamic SQL run where the temp tables
    ``temp`` exist) that the schema does not have."""
    return Resolver(schema, temp).check(sql)


def temp_tables(sql: str, schema: Schema) -> dict[str, Columns]:
    """The temp tables (and table variables) ``sql`` creates, with their columns."""
    resolver = Resolver(schema)
    resolver.check(sql)
    return resolver.temp


def bound_references(sql: str, schema: Schema) -> list[BaseSegment]:
    """The column references of ``sql`` the check binds to known columns (so a misspelling of one is caught);
    the rest name columns of catalog views or of functions without a column list."""
    resolver = Resolver(schema)
    resolver.check(sql)
    return resolver.bound
