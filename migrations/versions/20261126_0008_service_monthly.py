"""The service monthly snapshot: earned value, claimed, variance, quantities and review counts per month.

Why: dashboards compare each service's earned value with what was claimed, month by month.
``fact.service_monthly`` holds one row per (month, service) with the state at the end of the month in
the business time zone (or at the as-of instant for the current month), loaded by
``warehouse.load_fact_service_monthly``; an ended month is recomputed only when late data reaches it.
Risk: new objects only. Downgrade drops them with their data.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.replaceable import apply_version, revert_version

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PROCEDURES = ("warehouse.load_fact_service_monthly",)
MONEY = sa.Numeric(18, 2)


def upgrade() -> None:
    op.create_table(
        "service_monthly",
        sa.Column("month_date_key", sa.Integer, primary_key=True, autoincrement=False, comment="dim.date, 1st"),
        sa.Column("service_id", sa.Integer, primary_key=True, autoincrement=False, comment="the service's key"),
        sa.Column("service_sk", sa.BigInteger, nullable=False, comment="dim.service version at the month's end"),
        sa.Column("project_sk", sa.BigInteger, nullable=False, comment="dim.project version; -1 unknown"),
        sa.Column("agreed_fee", MONEY, nullable=True),
        sa.Column("progress_pct", sa.Numeric(5, 2), nullable=True),
        sa.Column("earned_value", MONEY, nullable=True, comment="agreed_fee x progress_pct / 100"),
        sa.Column("claimed", MONEY, nullable=True, comment="claimed_to_date, never the lump sum"),
        sa.Column("variance", MONEY, nullable=True, comment="earned_value - claimed"),
        sa.Column("unit_qty", sa.Numeric(10, 2), nullable=True),
        sa.Column("reviews_total", sa.Integer, nullable=False, comment="not cancelled, not deleted"),
        sa.Column("reviews_completed", sa.Integer, nullable=False),
        sa.Column("reviews_overdue", sa.Integer, nullable=False),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        schema="fact",
        comment="service monthly snapshot: one row per service and month",
    )
    for qualified in PROCEDURES:
        apply_version(qualified, revision)


def downgrade() -> None:
    for qualified in PROCEDURES:
        revert_version(qualified, revision, kind="procedure")
    op.drop_table("service_monthly", schema="fact")
