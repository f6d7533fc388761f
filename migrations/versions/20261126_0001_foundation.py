"""Foundation: layer schemas, run-control tables, the date dimension and its loader.

Why: every later capability writes into these schemas and logs into ``ctl``; the date dimension is
needed by every fact. Creates schemas ctl, stg, dim, fact, brg, mart, warehouse; tables ctl.run,
ctl.run_step, ctl.watermark, ctl.data_quality_result and dim.date (with its unknown member, -1);
procedure warehouse.load_dim_date (first version).
Risk: none on an empty database. Downgrade drops the schemas with everything in them.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql

from migrations.replaceable import apply_version, revert_version

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMAS = ("ctl", "stg", "dim", "fact", "brg", "mart", "warehouse")
# Source cursor values are offset-less timestamps; DATETIME2 keeps their full precision on SQL Server.
SOURCE_TIMESTAMP = sa.DateTime().with_variant(mssql.DATETIME2(precision=7), "mssql")
RUN_STATUSES = ("running", "success", "failed", "skipped")
DQ_SEVERITIES = ("warn", "error")
DQ_STATUSES = ("pass", "fail", "error")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    for schema in SCHEMAS:
        op.execute(sa.schema.CreateSchema(schema))

    op.create_table(
        "run",
        sa.Column("run_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("flow_name", sa.String(100), nullable=False),
        sa.Column("flow_run_id", sa.String(36), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("as_of_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parameters", sa.JSON, nullable=True),
        sa.Column("error_text", sa.UnicodeText, nullable=True),
        sa.CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        schema="ctl",
    )
    op.create_index(op.f("ix_run_status_started_at"), "run", ["status", "started_at"], schema="ctl")

    op.create_table(
        "run_step",
        sa.Column("run_step_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("run_id", sa.BigInteger, sa.ForeignKey("ctl.run.run_id"), nullable=False),
        sa.Column("step_name", sa.String(100), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.BigInteger, nullable=True),
        sa.Column("rows_read", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("rows_inserted", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("rows_updated", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("rows_closed", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("rows_deleted", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("error_text", sa.UnicodeText, nullable=True),
        sa.UniqueConstraint("run_id", "step_name"),
        sa.CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        schema="ctl",
    )

    op.create_table(
        "watermark",
        sa.Column("source_object", sa.String(128), primary_key=True),
        sa.Column("source_partition", sa.String(64), primary_key=True, comment="tracker, or '' when none"),
        sa.Column("cursor_value", SOURCE_TIMESTAMP, nullable=True),
        sa.Column("run_id", sa.BigInteger, sa.ForeignKey("ctl.run.run_id"), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema="ctl",
    )

    op.create_table(
        "data_quality_result",
        sa.Column("result_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("run_id", sa.BigInteger, sa.ForeignKey("ctl.run.run_id"), nullable=False),
        sa.Column("check_name", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(5), nullable=False),
        sa.Column("status", sa.String(5), nullable=False),
        sa.Column("failing_count", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("threshold", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("sample_keys", sa.UnicodeText, nullable=True),
        sa.Column("message", sa.UnicodeText, nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_in("severity", DQ_SEVERITIES), name="severity"),
        sa.CheckConstraint(_in("status", DQ_STATUSES), name="status"),
        schema="ctl",
    )
    op.create_index(
        op.f("ix_data_quality_result_check_name_checked_at"),
        "data_quality_result",
        ["check_name", "checked_at"],
        schema="ctl",
    )

    date_table = op.create_table(
        "date",
        sa.Column("date_key", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("full_date", sa.Date, nullable=True, comment="NULL only for the unknown member"),
        sa.Column("day_of_week", sa.SmallInteger, nullable=True, comment="ISO: 1 = Monday .. 7 = Sunday"),
        sa.Column("day_name", sa.String(9), nullable=False),
        sa.Column("day_of_month", sa.SmallInteger, nullable=True),
        sa.Column("day_of_year", sa.SmallInteger, nullable=True),
        sa.Column("is_weekend", sa.Boolean, nullable=True),
        sa.Column("iso_week", sa.SmallInteger, nullable=True),
        sa.Column("iso_year", sa.SmallInteger, nullable=True),
        sa.Column("iso_week_label", sa.String(8), nullable=False),
        sa.Column("week_start_date", sa.Date, nullable=True),
        sa.Column("month_number", sa.SmallInteger, nullable=True),
        sa.Column("month_name", sa.String(9), nullable=False),
        sa.Column("month_start_date", sa.Date, nullable=True),
        sa.Column("month_end_date", sa.Date, nullable=True),
        sa.Column("year_month", sa.String(7), nullable=False),
        sa.Column("quarter", sa.SmallInteger, nullable=True),
        sa.Column("calendar_year", sa.SmallInteger, nullable=True),
        sa.Column("fiscal_year", sa.SmallInteger, nullable=True, comment="labelled by the year it ends"),
        sa.Column("fiscal_year_label", sa.String(7), nullable=False),
        sa.Column("fiscal_year_start_date", sa.Date, nullable=True),
        sa.UniqueConstraint("full_date"),
        schema="dim",
    )
    op.bulk_insert(
        date_table,
        [
            {
                "date_key": -1,
                "day_name": "Unknown",
                "iso_week_label": "Unknown",
                "month_name": "Unknown",
                "year_month": "Unknown",
                "fiscal_year_label": "Unknown",
            }
        ],
    )

    apply_version("warehouse.load_dim_date", revision)


def downgrade() -> None:
    revert_version("warehouse.load_dim_date", revision, kind="procedure")
    op.drop_table("date", schema="dim")
    op.drop_table("data_quality_result", schema="ctl")
    op.drop_table("watermark", schema="ctl")
    op.drop_table("run_step", schema="ctl")
    op.drop_table("run", schema="ctl")
    for schema in reversed(SCHEMAS):
        op.execute(sa.schema.DropSchema(schema))
