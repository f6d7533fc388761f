"""The recompute contract, atomic publication of a run's facts, and an exact run log.

Why (issue #11): fact and bridge loaders chose what to recompute from ``ctl.run_step`` rows matched by
step names typed in SQL, and ``load_fact_project_monthly`` from the rows *its own run* had written, so a
retry after a failed run recomputed nothing. Now the run log keeps, per procedure, the last run whose fact
phase committed (``ctl.step_state``, written in that phase's transaction) and hands it to every fact and
bridge procedure as ``p_since_run_id`` (``load_fact_service_monthly`` also gets its as-of as
``p_since_as_of``; the daily snapshot takes a backfill's first date as ``p_recompute_from`` instead of a
transaction setting). New versions of all nine fact and bridge procedures take these parameters and
report the rows they computed (``rows_read``); ``warehouse.last_success`` is dropped. The fact phase
commits once, with ``ctl.publication``: one row per run whose facts were published, holding its as-of
date and month in the business time zone, which ``mart.issue_backlog_age`` and ``mart.project_scorecard``
now read instead of "the newest date (month) that has rows". ``load_fact_project_monthly`` takes each
month's state on its last day (or the as-of date), not the newest day with rows, gives every project that
exists then a row, and counts issues without a PM project under the unknown project (-1), as
business-rules.md asks. ``ctl.run_step_table`` records the rows each step physically inserted, updated and
deleted per table, ``ctl.run_step_meaning`` what they mean where that differs (new keys, versions closed,
rows dropped as unchanged, quarantined...); ``ctl.run_step.rows_closed`` (a meaning) is dropped, and a step
whose writes were rolled back with the fact phase is marked ``reverted``.
Risk: the nine procedures change signature, so on PostgreSQL each is dropped and created again inside the
migration's transaction (a run waits for the migration lock; nothing else calls them). ``step_state`` is
seeded from the last successful run of each fact step and ``publication`` from the newest snapshot date
and month, so the first run after the upgrade is incremental as before. Downgrade drops the new tables
(their history is lost), restores the previous procedures and views, and adds ``rows_closed`` back as 0.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.replaceable import apply_version, drop_object, revert_version

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

FACT_PROCEDURES = (
    "warehouse.add_inferred_members",
    "warehouse.load_fact_issue_daily",
    "warehouse.load_fact_issue_event",
    "warehouse.load_brg_issue_category",
    "warehouse.load_brg_review_issue",
    "warehouse.load_fact_review",
    "warehouse.load_fact_review_event",
    "warehouse.load_fact_service_monthly",
    "warehouse.load_fact_project_monthly",
)
VIEWS = ("mart.issue_backlog_age", "mart.project_scorecard")
OLD_STATUSES = ("running", "success", "failed", "skipped")
STATUSES = (*OLD_STATUSES, "reverted")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _steps_in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _signature_changes() -> bool:
    # PostgreSQL CREATE OR REPLACE with other arguments adds an overload; T-SQL CREATE OR ALTER replaces
    return str(op.get_context().dialect.name) == "postgresql"


def upgrade() -> None:
    op.create_table(
        "step_state",
        sa.Column("step_name", sa.String(100), primary_key=True, comment="the procedure's qualified name"),
        sa.Column("run_id", sa.BigInteger, sa.ForeignKey("ctl.run.run_id"), nullable=False,
                  comment="the last run whose fact phase committed this step"),
        sa.Column("as_of_at", sa.DateTime(timezone=True), nullable=False, comment="that run's as-of instant"),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        schema="ctl",
        comment="per fact or bridge procedure: what it last completed; procedures recompute what changed since",
    )  # fmt: skip
    op.create_table(
        "publication",
        sa.Column("run_id", sa.BigInteger, sa.ForeignKey("ctl.run.run_id"), primary_key=True, autoincrement=False),
        sa.Column("as_of_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of_date_key", sa.Integer, nullable=False, comment="the as-of local date (YYYYMMDD)"),
        sa.Column("as_of_month_key", sa.Integer, nullable=False, comment="its month's first day (YYYYMMDD)"),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        schema="ctl",
        comment="runs whose facts were published (committed together); marts read the newest one's as-of",
    )
    op.create_table(
        "run_step_table",
        sa.Column("run_id", sa.BigInteger, sa.ForeignKey("ctl.run.run_id"), primary_key=True, autoincrement=False),
        sa.Column("step_name", sa.String(100), primary_key=True),
        sa.Column("table_name", sa.String(128), primary_key=True, comment="schema.table"),
        sa.Column("rows_inserted", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("rows_updated", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("rows_deleted", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        schema="ctl",
        comment="rows a step physically inserted, updated and deleted in each table it wrote",
    )
    op.create_table(
        "run_step_meaning",
        sa.Column("run_id", sa.BigInteger, sa.ForeignKey("ctl.run.run_id"), primary_key=True, autoincrement=False),
        sa.Column("step_name", sa.String(100), primary_key=True),
        sa.Column("meaning", sa.String(40), primary_key=True, comment="new_keys, versions_closed, unchanged, ..."),
        sa.Column("value", sa.BigInteger, nullable=False),
        schema="ctl",
        comment="what a step's rows mean where that differs from the physical counts",
    )
    op.drop_constraint(op.f("ck_run_step_status"), "run_step", schema="ctl", type_="check")
    op.create_check_constraint(op.f("ck_run_step_status"), "run_step", _in("status", STATUSES), schema="ctl")
    op.drop_column("run_step", "rows_closed", schema="ctl", mssql_drop_default=True)

    # the state the old loaders found by name: each fact step's last success, and the newest snapshot
    op.execute(f"""INSERT INTO ctl.step_state (step_name, run_id, as_of_at, completed_at)
        SELECT s.step_name, s.run_id, r.as_of_at, COALESCE(s.ended_at, s.started_at)
        FROM ctl.run_step AS s INNER JOIN ctl.run AS r ON r.run_id = s.run_id
        WHERE s.status = 'success' AND s.step_name IN {_steps_in(FACT_PROCEDURES)}
            AND s.run_id = (SELECT MAX(l.run_id) FROM ctl.run_step AS l
                            WHERE l.step_name = s.step_name AND l.status = 'success')""")
    op.execute("""INSERT INTO ctl.publication (run_id, as_of_at, as_of_date_key, as_of_month_key, published_at)
        SELECT r.run_id, r.as_of_at, (SELECT MAX(snapshot_date_key) FROM fact.issue_daily),
            (SELECT MAX(snapshot_date_key) / 100 * 100 + 1 FROM fact.issue_daily), COALESCE(r.ended_at, r.started_at)
        FROM ctl.run AS r
        WHERE r.run_id = (SELECT MAX(run_id) FROM ctl.step_state)
            AND EXISTS (SELECT 1 FROM fact.issue_daily)""")

    for qualified in FACT_PROCEDURES:
        if _signature_changes():
            drop_object(qualified, "procedure")
        apply_version(qualified, revision)
    drop_object("warehouse.last_success", "function")
    for qualified in VIEWS:
        apply_version(qualified, revision)


def downgrade() -> None:
    for qualified in VIEWS:
        revert_version(qualified, revision, kind="view")
    revert_version("warehouse.last_success", revision, kind="function")
    for qualified in FACT_PROCEDURES:
        if _signature_changes():
            drop_object(qualified, "procedure")
        revert_version(qualified, revision, kind="procedure")
    op.add_column(
        "run_step",
        sa.Column("rows_closed", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        schema="ctl",
    )
    op.execute("UPDATE ctl.run_step SET status = 'failed' WHERE status = 'reverted'")
    op.drop_constraint(op.f("ck_run_step_status"), "run_step", schema="ctl", type_="check")
    op.create_check_constraint(op.f("ck_run_step_status"), "run_step", _in("status", OLD_STATUSES), schema="ctl")
    op.drop_table("run_step_meaning", schema="ctl")
    op.drop_table("run_step_table", schema="ctl")
    op.drop_table("publication", schema="ctl")
    op.drop_table("step_state", schema="ctl")
