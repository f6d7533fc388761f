"""Issue activity events: created, status change, closed, reopened, deleted, timed from the source.

Why: dashboards count what happened to issues on each day, not only their state at its end.
``fact.issue_event`` holds one row per (issue, event type, instant), derived from ``dim.issue``
history by ``warehouse.load_fact_issue_event``; each run re-derives the events of the issues it
changed. It uses the durable issue keys the daily snapshot's loader assigns, so it loads after it.
Risk: new objects only. Downgrade drops them with their data.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.replaceable import apply_version, revert_version

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PROCEDURES = ("warehouse.load_fact_issue_event",)
EVENT_TYPES = ("created", "status_change", "closed", "reopened", "deleted")


def upgrade() -> None:
    op.create_table(
        "issue_event",
        sa.Column("issue_key", sa.BigInteger, primary_key=True, autoincrement=False, comment="dim.issue_key"),
        sa.Column("event_type", sa.Unicode(20), primary_key=True),
        sa.Column("event_at", sa.DateTime(timezone=True), primary_key=True, comment="the source's change time"),
        sa.Column("event_date_key", sa.Integer, nullable=False, comment="dim.date, business time zone; -1 unknown"),
        sa.Column("issue_sk", sa.BigInteger, nullable=False, comment="dim.issue version the event produced"),
        sa.Column("from_status", sa.Unicode(50), nullable=True),
        sa.Column("to_status", sa.Unicode(50), nullable=True),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.CheckConstraint("event_type IN ('" + "', '".join(EVENT_TYPES) + "')", name="event_type"),
        schema="fact",
        comment="issue activity events: one row per issue, event type and instant",
    )
    for qualified in PROCEDURES:
        apply_version(qualified, revision)


def downgrade() -> None:
    for qualified in PROCEDURES:
        revert_version(qualified, revision, kind="procedure")
    op.drop_table("issue_event", schema="fact")
