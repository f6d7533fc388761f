"""Review events, the review <-> issue bridge, project overview and scorecard marts, discipline in the issue trend.

Why: issue #4's remaining dashboards. ``fact.review_event`` holds what happened to each review (planned,
status changes, completed, cancelled, reopened, rescheduled, issued, deleted), derived from ``dim.review``
history by ``warehouse.load_fact_review_event``. ``brg.review_issue`` links a review to the issues of its
project opened or closed within its window (the ``review_issue_window_days`` setting), loaded by
``warehouse.load_brg_review_issue`` from the issue events. ``warehouse.add_inferred_members`` gives a key
that a dimension row refers to and its parent dimension never held a current inferred row (business-rules.md),
completed in place when the real row arrives. ``warehouse.last_success`` is the one place
incremental loaders ask when their step last succeeded. ``mart.project_overview`` (project by month) and
``mart.project_scorecard`` (the current month, with the change since last month) read
``fact.project_monthly``; ``mart.issue_trend`` gains the issue's discipline. A new version of
``warehouse.load_fact_issue_event`` stores each event's project (backfilled here from the issue version
it came from, and indexed with the event date for the bridge), and a new version of
``warehouse.load_fact_project_monthly`` recomputes the months a late issue deletion reaches (it removes
daily rows without writing any, so the months were left stale). ``warehouse.merge_scd2`` gains a circuit
breaker: a full compare that would close more than ``max_delete_share`` of a dimension's live rows (an
extract suddenly empty or mostly missing) raises instead, unless the run is forced; the full-compare
loaders lose their own empty-extract refusal, which had no way to be forced. Days loaded before 0002 get
their fiscal month and quarter (0002 left them NULL and the flow never called the date loader again).
``ctl.quarantine`` keeps staged rows rejected as bad input, with their reason and run. The daily snapshot's
loader recomputes every issue from a date a backfill gives it (``pmw run --backfill-from``).
Risk: the backfill updates every stored issue event once (one UPDATE, in the migration's transaction: on
PostgreSQL the table then holds a dead copy of each row until VACUUM; on SQL Server the log grows by
the table's size); new
objects otherwise, and a new version of ``mart.issue_trend``: PostgreSQL cannot add a column in the middle
of a view by replacing it, so the view is dropped and created again (nothing depends on it). Downgrade
drops the new objects with their data and restores the previous ``mart.issue_trend``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.replaceable import apply_version, drop_object, revert_version

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FUNCTIONS = ("warehouse.last_success",)
PROCEDURES = ("warehouse.add_inferred_members", "warehouse.load_fact_review_event", "warehouse.load_brg_review_issue")
REPLACED_PROCEDURES = (
    "warehouse.load_fact_project_monthly",  # late deletions recompute their months
    "warehouse.load_fact_issue_event",  # events carry their issue's project
    "warehouse.merge_scd2",  # inferred members survive a full compare; the circuit breaker
    "warehouse.load_fact_issue_daily",  # a backfill recomputes from a given date
    # the full-compare loaders: their empty-extract guard gives way to merge_scd2's circuit breaker, which
    # an operator can force past when the source really emptied the table
    *(
        f"warehouse.load_dim_{name}"
        for name in ("client", "project_type", "app_user", "project", "service", "review", "status_map", "priority_map")
    ),
)
BRIDGED_EVENTS = "event_type IN ('created', 'closed')"
# the events loader's rule: the version's project, else the project another version of the issue resolved
_VERSION_PROJECT = (
    "SELECT v.issue_sk, COALESCE(v.project_id, MAX(v.project_id) OVER (PARTITION BY k.issue_key)) AS project_id "
    "FROM dim.issue AS v INNER JOIN dim.issue_key AS k ON k.source_system = v.source_system "
    "AND k.source_project_id = v.source_project_id AND k.source_issue_id = v.source_issue_id"
)
BACKFILL_EVENT_PROJECT = {
    "postgresql": "UPDATE fact.issue_event AS e SET project_id = p.project_id FROM (" + _VERSION_PROJECT + ") AS p "
    "WHERE p.issue_sk = e.issue_sk AND p.project_id IS NOT NULL",
    "mssql": "UPDATE e SET project_id = p.project_id FROM fact.issue_event AS e INNER JOIN ("
    + _VERSION_PROJECT
    + ") AS p ON p.issue_sk = e.issue_sk WHERE p.project_id IS NOT NULL",
}  # an event of an issue without a project keeps the column's default, -1 (the unknown project)
# 0002 added the fiscal periods without filling them (the date loader would, it said, but the flow skipped
# a calendar whose days were all there): fill what is still NULL, by the loader's rule
FISCAL_MONTH = {
    "postgresql": "(EXTRACT(MONTH FROM full_date)::integer - EXTRACT(MONTH FROM fiscal_year_start_date)::integer "
    "+ 12) % 12 + 1",
    "mssql": "(MONTH(full_date) - MONTH(fiscal_year_start_date) + 12) % 12 + 1",
}
NEW_VIEWS = ("mart.project_overview", "mart.project_scorecard")  # the scorecard reads the overview
REPLACED_VIEWS = ("mart.issue_trend",)
REVIEW_EVENT_TYPES = (
    "planned", "status_change", "completed", "cancelled", "reopened", "rescheduled", "issued", "deleted",
)  # fmt: skip
ACTIVITIES = ("opened", "closed")


def _in_list(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ('" + "', '".join(values) + "')"


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("quarantine_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.Column("source_object", sa.String(128), nullable=False, comment="flows/sources.py name"),
        sa.Column("business_key", sa.Unicode(400), nullable=True, comment="key values joined by |"),
        sa.Column("reason", sa.Unicode(200), nullable=False),
        sa.Column("row_data", sa.UnicodeText, nullable=True, comment="the staged row as JSON"),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
        schema="ctl",
        comment="staged rows rejected as bad input (flows/validation.py), kept across runs",
    )
    op.create_index(op.f("ix_quarantine_run_id"), "quarantine", ["run_id"], schema="ctl")
    op.create_table(
        "review_event",
        sa.Column("review_id", sa.Integer, primary_key=True, autoincrement=False, comment="the review's key"),
        sa.Column("event_type", sa.Unicode(20), primary_key=True),
        sa.Column("event_at", sa.DateTime(timezone=True), primary_key=True,
                  comment="issued: actual_issued_at; otherwise when a run first saw the change"),
        sa.Column("event_date_key", sa.Integer, nullable=False, comment="dim.date, business time zone; -1 unknown"),
        sa.Column("review_sk", sa.BigInteger, nullable=False, comment="dim.review version the event produced"),
        sa.Column("from_value", sa.Unicode(50), nullable=True, comment="status, or ISO date / UTC instant"),
        sa.Column("to_value", sa.Unicode(50), nullable=True),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.CheckConstraint(_in_list("event_type", REVIEW_EVENT_TYPES), name="event_type"),
        schema="fact",
        comment="review events: one row per review, event type and instant",
    )  # fmt: skip
    op.create_table(
        "review_issue",
        sa.Column("review_id", sa.Integer, primary_key=True, autoincrement=False, comment="the review's key"),
        sa.Column("issue_key", sa.BigInteger, primary_key=True, autoincrement=False, comment="dim.issue_key"),
        sa.Column("activity", sa.Unicode(10), primary_key=True, comment="opened or closed in the window"),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=False, comment="the issue event's instant"),
        sa.Column("event_date_key", sa.Integer, nullable=False, comment="dim.date, business time zone"),
        sa.Column("window_days", sa.SmallInteger, nullable=False, comment="the window length it was derived with"),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.CheckConstraint(_in_list("activity", ACTIVITIES), name="activity"),
        schema="brg",
        comment="review to issue: issues of the review's project opened or closed within its window",
    )
    # a run replaces the rows of the issues it changed: find them without scanning the bridge
    op.create_index(op.f("ix_review_issue_issue_key"), "review_issue", ["issue_key"], schema="brg")
    # the bridge reads a review's window as a range of one project's opened and closed events
    op.add_column(
        "issue_event",
        sa.Column(
            "project_id",
            sa.Integer,
            nullable=False,
            server_default=sa.text("-1"),
            comment="the issue version's PM project; -1 unresolved",
        ),
        schema="fact",
    )
    op.execute(BACKFILL_EVENT_PROJECT[op.get_context().dialect.name])
    op.execute(
        f"UPDATE dim.date SET fiscal_month_number = {FISCAL_MONTH[op.get_context().dialect.name]} "
        "WHERE fiscal_month_number IS NULL AND fiscal_year_start_date IS NOT NULL"
    )
    op.execute("UPDATE dim.date SET fiscal_quarter = (fiscal_month_number - 1) / 3 + 1 "
               "WHERE fiscal_quarter IS NULL AND fiscal_month_number IS NOT NULL")  # fmt: skip
    op.create_index(
        op.f("ix_issue_event_project_id_event_date_key"), "issue_event", ["project_id", "event_date_key"],
        schema="fact", postgresql_where=sa.text(BRIDGED_EVENTS), mssql_where=sa.text(BRIDGED_EVENTS),
    )  # fmt: skip
    # "what did runs after run N write?": the inferred-members step reads the analytics written since its
    # last run, the late-deletion months the events this run wrote, the bridge's check this run's rows.
    # Rows arrive in run order, so a BRIN index answers from a few block ranges (a B-tree elsewhere).
    for schema, table in (("dim", "issue_analytics"), ("fact", "issue_event"), ("brg", "review_issue")):
        op.create_index(op.f(f"ix_{table}_run_id"), table, ["run_id"], schema=schema, postgresql_using="brin")
    for qualified in FUNCTIONS + PROCEDURES + REPLACED_PROCEDURES + NEW_VIEWS:
        apply_version(qualified, revision)
    for qualified in REPLACED_VIEWS:
        drop_object(qualified, "view")
        apply_version(qualified, revision)


def downgrade() -> None:
    for qualified in REPLACED_VIEWS:
        drop_object(qualified, "view")
        revert_version(qualified, revision, kind="view")
    for qualified in reversed(NEW_VIEWS):
        revert_version(qualified, revision, kind="view")
    for qualified in PROCEDURES + REPLACED_PROCEDURES:
        revert_version(qualified, revision, kind="procedure")
    for qualified in FUNCTIONS:
        revert_version(qualified, revision, kind="function")
    op.drop_index(op.f("ix_issue_event_project_id_event_date_key"), table_name="issue_event", schema="fact")
    op.drop_index(op.f("ix_issue_event_run_id"), table_name="issue_event", schema="fact")
    op.drop_index(op.f("ix_issue_analytics_run_id"), table_name="issue_analytics", schema="dim")
    op.drop_column("issue_event", "project_id", schema="fact", mssql_drop_default=True)
    op.drop_index(op.f("ix_review_issue_run_id"), table_name="review_issue", schema="brg")
    op.drop_table("review_issue", schema="brg")
    op.drop_table("review_event", schema="fact")
    op.drop_index(op.f("ix_quarantine_run_id"), table_name="quarantine", schema="ctl")
    op.drop_table("quarantine", schema="ctl")
