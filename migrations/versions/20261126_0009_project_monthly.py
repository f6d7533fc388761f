"""Project KPIs per month, built from the daily issue snapshot and the service monthly snapshot; the
service financials mart.

Why: "how is each project doing this month" needs issues, reviews, services and money side by side.
``fact.project_monthly`` holds one row per (month, project), loaded by ``warehouse.load_fact_project_monthly``
from the other facts (one rule set per number); a month is recomputed when this run wrote its snapshots.
``mart.service_financials`` shows earned value against claimed per service and month.
Risk: new objects only. Downgrade drops them with their data.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.replaceable import apply_version, revert_version

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

PROCEDURES = ("warehouse.load_fact_project_monthly",)
VIEWS = ("mart.service_financials",)
MONEY = sa.Numeric(18, 2)
COUNTS = (
    "issues_total", "issues_open", "issues_closed", "high_priority_open", "reviews_total", "reviews_completed",
    "reviews_overdue", "services_in_progress", "services_completed",
)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "project_monthly",
        sa.Column("month_date_key", sa.Integer, primary_key=True, autoincrement=False, comment="dim.date, 1st"),
        sa.Column("project_id", sa.Integer, primary_key=True, autoincrement=False, comment="the project's key"),
        *(sa.Column(name, sa.Integer, nullable=False) for name in COUNTS[:4]),
        sa.Column("avg_resolution_days", sa.Numeric(10, 1), nullable=True, comment="closed issues"),
        *(sa.Column(name, sa.Integer, nullable=False) for name in COUNTS[4:]),
        sa.Column("earned_value", MONEY, nullable=False),
        sa.Column("claimed", MONEY, nullable=False),
        sa.Column("variance", MONEY, nullable=False),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        schema="fact",
        comment="project KPIs: one row per project and month",
    )
    for qualified in PROCEDURES + VIEWS:
        apply_version(qualified, revision)


def downgrade() -> None:
    for qualified in VIEWS:
        revert_version(qualified, revision, kind="view")
    for qualified in PROCEDURES:
        revert_version(qualified, revision, kind="procedure")
    op.drop_table("project_monthly", schema="fact")
