"""The daily issue snapshot fact, durable issue keys, and the priority fallback rule.

Why: dashboards follow the issue backlog day by day. ``fact.issue_daily`` holds one row per (issue,
local date) with the dimension versions in effect at the end of that day; its grain is the primary
key. An issue's business key is three strings, so ``dim.issue_key`` gives each issue a durable
integer key (assigned by the fact loader, never changed) that the fact uses for its grain.
``warehouse.normalize_priority`` is business-rules.md's fallback for spellings the priority map lacks.
No foreign-key constraints on the fact: checking five of them on every one of a million daily rows
costs more than the load; the ``fact_issue_daily_*`` quality checks find orphans instead.
Risk: new objects only. Downgrade drops them with their data.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.replaceable import apply_version, revert_version

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FUNCTIONS = ("warehouse.normalize_priority",)
PROCEDURES = ("warehouse.load_fact_issue_daily",)


def upgrade() -> None:
    op.create_table(
        "issue_key",
        sa.Column("issue_key", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("source_system", sa.Unicode(20), nullable=False),
        sa.Column("source_project_id", sa.Unicode(64), nullable=False),
        sa.Column("source_issue_id", sa.Unicode(64), nullable=False),
        sa.UniqueConstraint("source_system", "source_project_id", "source_issue_id"),
        schema="dim",
        comment="durable key of each issue: assigned once, shared by all its versions in dim.issue",
    )
    op.create_table(
        "issue_daily",
        sa.Column("snapshot_date_key", sa.Integer, primary_key=True, autoincrement=False, comment="dim.date"),
        sa.Column("issue_key", sa.BigInteger, primary_key=True, autoincrement=False, comment="dim.issue_key"),
        sa.Column("issue_sk", sa.BigInteger, nullable=False, comment="dim.issue version at the end of the day"),
        sa.Column("project_sk", sa.BigInteger, nullable=False, comment="dim.project version; -1 unresolved"),
        sa.Column("status_map_sk", sa.BigInteger, nullable=False, comment="dim.status_map; -1 unmapped"),
        sa.Column("created_date_key", sa.Integer, nullable=False, comment="dim.date; -1 unknown"),
        sa.Column("priority", sa.Unicode(20), nullable=True, comment="Critical, High, Medium, Low or NULL"),
        sa.Column("is_open", sa.Boolean, nullable=False),
        sa.Column("is_closed", sa.Boolean, nullable=False),
        sa.Column("is_high_priority", sa.Boolean, nullable=False),
        sa.Column("backlog_age_days", sa.Integer, nullable=True, comment="open issues only"),
        sa.Column("resolution_days", sa.Integer, nullable=True, comment="closed issues only"),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        schema="fact",
        comment="one row per issue and local date while the issue exists and is not deleted",
    )
    # "what did runs after run N write?" (late data, new keys, a run's quality checks): rows arrive in run
    # order, so a BRIN index answers it from a few block ranges at almost no cost per insert
    for schema, table in (("dim", "issue"), ("fact", "issue_daily")):
        op.create_index(op.f(f"ix_{table}_run_id"), table, ["run_id"], schema=schema, postgresql_using="brin")
    for qualified in FUNCTIONS:
        apply_version(qualified, revision)
    for qualified in PROCEDURES:
        apply_version(qualified, revision)


def downgrade() -> None:
    for qualified in reversed(PROCEDURES):
        revert_version(qualified, revision, kind="procedure")
    for qualified in FUNCTIONS:
        revert_version(qualified, revision, kind="function")
    op.drop_index(op.f("ix_issue_run_id"), table_name="issue", schema="dim")
    op.drop_table("issue_daily", schema="fact")
    op.drop_table("issue_key", schema="dim")
