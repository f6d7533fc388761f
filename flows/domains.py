"""Domains of numbers (business-rules.md, Services and reviews): the quarantine's rules for values that are
not numbers or lie outside what their column means.

* NaN and infinities, in every numeric staging column of a source (declared or not): they are never numbers.
  PostgreSQL's numeric holds NaN (and, unconstrained, infinities since 14); its NaN equals NaN and sorts above
  every number, so ``NaN > 100`` is true and ``NaN <> NaN`` false: the rule compares with the three values
  themselves. One too large for its staging column (an infinity in numeric(18, 2)) never reaches staging: the
  misfit check sets it aside first, saying the same (flows/validation.py). SQL Server's decimal, money and
  float cannot hold NaN or an infinity at all: there the rule would never match and is left out.
* The declared ``domains`` of a source (flows/sources.py): fees, rates and claims not negative, progress 0-100.
  A value that is not a number is reported as such and not also as out of range.

Each rule's reason names the column and the row's value.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.dialects import Dialect
from flows.sources import Domain, SourceObject

NUMERIC_TYPES = ("numeric", "decimal", "real", "double precision", "float", "money", "smallmoney")


@dataclass(frozen=True)
class Rule:
    """One quarantine rule: a predicate over staged row ``s`` and why a row it matches is rejected (a fixed
    text, bound as a parameter, or, when ``reason_sql`` is set, an SQL expression naming the row's value)."""

    reason: str
    predicate: str
    reason_sql: str | None = None


def _said(dialect: Dialect, column: str, after: str) -> str:
    """SQL text: '<column> <the row's value><after>'."""
    return dialect.concat_sql(dialect.literal_sql(f"{column} "), dialect.text_sql(f"s.{column}", 60),
                              dialect.literal_sql(after))  # fmt: skip


def outside(domain: Domain) -> str:
    """How a value breaks the domain, in words: outside 0-100, below 0, above 100."""
    if domain.minimum is not None and domain.maximum is not None:
        return f"outside {domain.minimum}-{domain.maximum}"
    return f"below {domain.minimum}" if domain.minimum is not None else f"above {domain.maximum}"


def domain_rules(source: SourceObject, numeric_columns: list[str], dialect: Dialect) -> list[Rule]:
    """The domain rules of ``source``, whose staging table's numeric columns are ``numeric_columns``."""
    rules = []
    for column in numeric_columns:
        not_a_number = dialect.not_a_number_sql(f"s.{column}")
        if not_a_number is not None:
            rules.append(Rule(
                f"{column} is not a number", not_a_number,
                _said(dialect, column, " is not a number (NaN and infinities never are)"),
            ))  # fmt: skip
    for domain in source.domains:
        column, breaks = domain.column, []
        if domain.minimum is not None:
            breaks.append(f"s.{column} < {domain.minimum}")
        if domain.maximum is not None:
            breaks.append(f"s.{column} > {domain.maximum}")
        predicate = f"({' OR '.join(breaks)})"
        not_a_number = dialect.not_a_number_sql(f"s.{column}")
        if not_a_number is not None:  # NaN > 100 is true on PostgreSQL: a NaN is reported as not a number, once
            predicate = f"(NOT ({not_a_number}) AND {predicate})"
        rules.append(Rule(f"{column} {outside(domain)}", predicate, _said(dialect, column, f" {outside(domain)}")))
    return rules


def check_declarations(source: SourceObject, staging_types: dict[str, str]) -> list[str]:
    """What is wrong with the domains declared for ``source`` (empty when nothing), given its staging
    table's {column: catalog type name}: a domain's column must be a declared, numeric column."""
    problems = []
    for domain in source.domains:
        if domain.column not in source.columns:
            problems.append(f"{source.name}: domain of {domain.column!r}, which is not among its columns")
        elif staging_types.get(domain.column, "").lower() not in NUMERIC_TYPES:
            problems.append(f"{source.name}: domain of {domain.column!r}, whose staging column is not numeric")
        elif domain.minimum is None and domain.maximum is None:
            problems.append(f"{source.name}: domain of {domain.column!r} without a bound")
    return problems
