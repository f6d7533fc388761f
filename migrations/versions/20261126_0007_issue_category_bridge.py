"""The issue <-> category bridge: discipline, primary and secondary category of each analysed issue.

Why: dashboards slice issues by discipline and category. ``brg.issue_category`` holds one row per
(issue, role) from the issue's current text analytics, loaded by ``warehouse.load_brg_issue_category``
after the daily snapshot (whose loader assigns the durable issue keys it uses).
Risk: new objects only. Downgrade drops them with their data.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.replaceable import apply_version, revert_version

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

PROCEDURES = ("warehouse.load_brg_issue_category",)
ROLES = ("discipline", "primary", "secondary")


def upgrade() -> None:
    op.create_table(
        "issue_category",
        sa.Column("issue_key", sa.BigInteger, primary_key=True, autoincrement=False, comment="dim.issue_key"),
        sa.Column("category_role", sa.Unicode(12), primary_key=True, comment="discipline, primary or secondary"),
        sa.Column("category_id", sa.Integer, nullable=False, comment="the category's durable key"),
        sa.Column("issue_category_sk", sa.BigInteger, nullable=False, comment="its current version; -1 unknown"),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.CheckConstraint("category_role IN ('" + "', '".join(ROLES) + "')", name="category_role"),
        schema="brg",
        comment="issue to category, one row per issue and role, from the current text analytics",
    )
    # analytics know an issue by (source system, tracker issue id) only: without this index a small delta
    # probes the (system, project, issue) key index by its first column, a full scan per changed issue
    op.create_index(op.f("ix_issue_key_source_issue_id"), "issue_key", ["source_issue_id"], schema="dim")
    for qualified in PROCEDURES:
        apply_version(qualified, revision)


def downgrade() -> None:
    for qualified in PROCEDURES:
        revert_version(qualified, revision, kind="procedure")
    op.drop_table("issue_category", schema="brg")
    op.drop_index(op.f("ix_issue_key_source_issue_id"), table_name="issue_key", schema="dim")
