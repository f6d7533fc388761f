"""The review accumulating snapshot, and the first marts (issue backlog age, issue trend, review performance).

Why: dashboards ask whether reviews are delivered on time and how the issue backlog evolves.
``fact.review`` keeps one row per review, updated in place by ``warehouse.load_fact_review``; the
``mart`` views answer the dashboards' questions from the facts (each view's file documents its grain,
columns and question). Views are versioned like procedures: their text is frozen per revision.
Risk: new objects only. Downgrade drops them with their data.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.replaceable import apply_version, revert_version

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PROCEDURES = ("warehouse.load_fact_review",)
VIEWS = ("mart.issue_backlog_age", "mart.issue_trend", "mart.review_performance")


def upgrade() -> None:
    op.create_table(
        "review",
        sa.Column("review_id", sa.Integer, primary_key=True, autoincrement=False, comment="the review's key"),
        sa.Column("review_sk", sa.BigInteger, nullable=False, comment="dim.review, current version"),
        sa.Column("service_sk", sa.BigInteger, nullable=False, comment="dim.service, current version; -1 unknown"),
        sa.Column("project_sk", sa.BigInteger, nullable=False, comment="dim.project, current version; -1 unknown"),
        sa.Column("planned_date_key", sa.Integer, nullable=False, comment="dim.date"),
        sa.Column("due_date_key", sa.Integer, nullable=False, comment="dim.date; -1 none"),
        sa.Column("issued_date_key", sa.Integer, nullable=False, comment="dim.date, local; -1 not issued"),
        sa.Column("cycle_no", sa.Integer, nullable=True),
        sa.Column("status", sa.Unicode(20), nullable=True),
        sa.Column("is_completed", sa.Boolean, nullable=False),
        sa.Column("is_cancelled", sa.Boolean, nullable=False),
        sa.Column("is_deleted", sa.Boolean, nullable=False, comment="deleted at the source: counted nowhere"),
        sa.Column("is_overdue", sa.Boolean, nullable=False, comment="at the as-of date of as_of_date_key"),
        sa.Column("days_overdue", sa.Integer, nullable=True),
        sa.Column("planned_vs_actual_days", sa.Integer, nullable=True, comment="issued date - planned date"),
        sa.Column("weight_factor", sa.Numeric(5, 2), nullable=True),
        sa.Column("as_of_date_key", sa.Integer, nullable=False, comment="dim.date: when the row was last evaluated"),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        schema="fact",
        comment="review accumulating snapshot: one row per review, updated in place",
    )
    for qualified in PROCEDURES + VIEWS:
        apply_version(qualified, revision)


def downgrade() -> None:
    for qualified in reversed(VIEWS):
        revert_version(qualified, revision, kind="view")
    for qualified in PROCEDURES:
        revert_version(qualified, revision, kind="procedure")
    op.drop_table("review", schema="fact")
