"""Three mart views become one text for both dialects (procs/portable; issue #15, point 2).

Why: ``mart.service_financials``, ``mart.issue_trend`` and ``mart.issue_urgency`` differed between the
dialects only in spelling (``JOIN`` and ``INNER JOIN``, a bare flag and ``flag = 1``, ``count(*) FILTER``
and ``SUM(CASE ...)``, ``count`` and ``COUNT_BIG``, ``'x'`` and ``N'x'``), so two texts could drift apart
unseen. What: each is written once, in SQL both dialects run, and frozen per dialect as that dialect
creates it (``CREATE OR REPLACE VIEW`` / ``CREATE OR ALTER VIEW``). Every column keeps its name, order,
type and values: on PostgreSQL the counts stay ``bigint`` (``SUM`` of integers is ``bigint`` there, and
``CAST(COUNT(*) AS BIGINT)`` is ``count``), the means are the same exact averages rounded the same way
(tests/test_migrations.py compares the columns' types before and after). On SQL Server the literals lose
their ``N`` prefix (ASCII text: the ``COALESCE`` with an ``NVARCHAR`` column stays ``NVARCHAR``).
Risk: none; ``CREATE OR REPLACE`` keeps the grants, and no other view reads these three. No SQL Server has
run the T-SQL copies: they parse and resolve against the offline schema (tests/test_tsql_names.py).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03
"""

from __future__ import annotations

from migrations.replaceable import apply_version, revert_version

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

VIEWS = ("mart.service_financials", "mart.issue_trend", "mart.issue_urgency")


def upgrade() -> None:
    for qualified in VIEWS:
        apply_version(qualified, revision)


def downgrade() -> None:
    for qualified in reversed(VIEWS):
        revert_version(qualified, revision, kind="view")
