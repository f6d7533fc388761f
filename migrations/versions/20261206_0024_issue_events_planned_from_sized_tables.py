"""Issue events derived through analysed temporary tables, as the T-SQL version does (PostgreSQL only; issue #17).

Why: ``warehouse.load_fact_issue_event`` joined the issues to derive again with their ``dim.issue`` versions on
three text columns inside one statement of CTEs. The planner cannot estimate that join (it expected 2 rows for
about 25,000), so it planned everything after it as nested loops over CTE scans: 33.1 s of the one-day delta at
1,000,000 issues (`bench_pipeline.py 100`), against 0.5 s when the README's figures were taken. What: the
versions in issue order and the status lookups land in temporary tables of their own, analysed, before the
events are derived from them; the rules and the rows are unchanged. Measured on a copy of the same warehouse:
the step's statements took 0.53 s instead of 32.5 s. The T-SQL version already stages ``#ordered`` and
``#status_at`` (SQL Server keeps statistics on temporary tables), so SQL Server is unchanged: no copy of it is
frozen here. Risk: two more temporary tables and two ANALYZEs per run (the initial load of a million issues'
events took 13.1 s, 14.3 s before). Verified here: the functional tests of the issue events, the independent model's
seeds and the one-day delta of a million issues giving the same fact.issue_event rows as before.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.replaceable import apply_version, revert_version

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

PROCEDURE = "warehouse.load_fact_issue_event"
DIALECTS = ("postgresql",)  # the T-SQL version already stages its steps in temporary tables


def upgrade() -> None:
    apply_version(PROCEDURE, revision, dialects=DIALECTS)


def downgrade() -> None:
    revert_version(PROCEDURE, revision, kind="procedure", dialects=DIALECTS)
