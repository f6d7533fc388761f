"""The T-SQL daily issue snapshot recomputes after late project and map versions, and writes -1 for a created
date outside the calendar, as the PostgreSQL version does (SQL Server only; issue #15).

Why: two drifts between the dialects of ``warehouse.load_fact_issue_daily``, found by reading them side by
side. The T-SQL version looked for late data in ``dim.issue`` and ``dim.issue_analytics`` versions only, so
a project or a status or priority map version loaded late (valid from a day already snapshotted) left that
day's rows as they were; PostgreSQL recomputes them. And it built ``created_date_key`` from the date itself,
so an issue created outside the date dimension's calendar got a key with no ``dim.date`` row (an orphan);
PostgreSQL looks the key up and writes -1 (unknown). What: the late-data union reads the three shared
dimensions too (as the T-SQL version recomputes every issue from its earliest day, the rows are PostgreSQL's;
PostgreSQL recomputes only the changed issues for an issue change, which is less work, not other rows), and
the key is looked up in ``dim.date``. PostgreSQL is unchanged: no copy of it is frozen here. Risk: a late
project or map version now recomputes every issue from its day on SQL Server, as it always did on PostgreSQL.
Rows already stored keep their orphan keys until a run recomputes their days (``pmw run --backfill-from D``).
Verified here: the T-SQL parses (tests/test_migrations.py); no SQL Server has run it.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03
"""

from __future__ import annotations

from migrations.replaceable import apply_version, revert_version

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

PROCEDURE = "warehouse.load_fact_issue_daily"
DIALECTS = ("mssql",)  # the PostgreSQL version already has both rules


def upgrade() -> None:
    apply_version(PROCEDURE, revision, dialects=DIALECTS)


def downgrade() -> None:
    revert_version(PROCEDURE, revision, kind="procedure", dialects=DIALECTS)
