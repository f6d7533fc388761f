"""What the model is given: each successful run's as-of instant, options and the source as that run read it.

A snapshot holds every source table (and the issues view) as plain rows: ``{column: value}`` with the
driver's Python values (naive ``datetime`` for the source's offset-less timestamps, ``date``, ``Decimal``,
``bool``, ``str``, ``int``). The source does not change while a run reads it, so the snapshot taken just
before a run is what that run saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from flows import demo_source

ISSUES_VIEW = "vw_ProjectManagement_AllIssues"
SNAPSHOT_TABLES = (*demo_source.SOURCE_TABLES, ISSUES_VIEW)  # the tracker tables too: cheap, and handy

Row = dict[str, object]


@dataclass(frozen=True)
class Settings:
    """The warehouse settings the rules depend on (their defaults)."""

    business_timezone: str = "Australia/Sydney"
    source_timezone: str = "Australia/Sydney"
    fiscal_year_start_month: int = 7
    review_issue_window_days: int = 14


@dataclass(frozen=True)
class Run:
    """One successful run: its as-of (aware, UTC), its options, and the source tables it read."""

    as_of: datetime
    source: dict[str, list[Row]]
    full_refresh: bool = False
    backfill_from: date | None = None


@dataclass
class History:
    """Every successful run so far, oldest first."""

    runs: list[Run] = field(default_factory=list)
    settings: Settings = field(default_factory=Settings)


def snapshot(engine: sa.Engine) -> dict[str, list[Row]]:
    """Every source table as rows, read in one transaction."""
    with engine.connect() as conn:
        return {
            table: [dict(row._mapping) for row in conn.exec_driver_sql(f'SELECT * FROM dbo."{table}"')]
            for table in SNAPSHOT_TABLES
        }
