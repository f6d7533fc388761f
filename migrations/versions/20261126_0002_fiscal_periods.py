"""Fiscal periods in the date dimension: fiscal month (1-12) and fiscal quarter (1-4).

Why: monthly facts and dashboards report by fiscal period, not only by fiscal year. Adds
dim.date.fiscal_month_number and dim.date.fiscal_quarter, and a second version of
warehouse.load_dim_date that fills them. Days already loaded get their periods on the next call of
the loader (it updates rows whose fiscal attributes differ), so no backfill runs here.
Risk: adding nullable columns is a metadata-only change in both dialects; no table rewrite.
Downgrade restores the first loader version, then drops the columns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.replaceable import apply_version, revert_version

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("date", sa.Column("fiscal_month_number", sa.SmallInteger, nullable=True), schema="dim")
    op.add_column("date", sa.Column("fiscal_quarter", sa.SmallInteger, nullable=True), schema="dim")
    apply_version("warehouse.load_dim_date", revision)


def downgrade() -> None:
    revert_version("warehouse.load_dim_date", revision, kind="procedure")
    op.drop_column("date", "fiscal_quarter", schema="dim")
    op.drop_column("date", "fiscal_month_number", schema="dim")
