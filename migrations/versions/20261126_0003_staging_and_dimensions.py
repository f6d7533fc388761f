"""Staging tables, SCD type-2 dimensions, their loaders, and per-run source bookkeeping.

Why: incremental extraction lands each source object's delta in ``stg.<object>`` (tagged with the
run id and the time zone its timestamps are in); ``warehouse.load_dim_<name>`` turns it into SCD2
history in ``dim.<name>`` through one generic, set-based ``warehouse.merge_scd2``. ``ctl.run_source``
records, per run and source partition, the extract window and the watermark before and after.
Each dimension gets its unknown member (surrogate key -1) and a unique index that allows exactly one
current row per business key (it also serves the merge's key lookups). No index on (key, valid_from):
it doubled the cost of every insert, and history lookups by date come with the facts (issue #4).
Risk: new objects only; nothing existing is rewritten. Downgrade drops them with their data.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql

from migrations.replaceable import apply_version, revert_version

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SOURCE_TIMESTAMP = sa.DateTime().with_variant(mssql.DATETIME2(precision=7), "mssql")
# PostgreSQL: a 64-bit hash_record_extended of the tracked values; SQL Server: an MD5 in hex.
ROW_HASH = sa.String(32).with_variant(sa.BigInteger(), "postgresql")
INSTANT = sa.DateTime(timezone=True)
TEXT = sa.Unicode
MONEY = sa.Numeric(18, 2)
SCORE = sa.Numeric(5, 4)

# Staging: source columns as the source types them, plus run_id and the zone of its timestamps.
STAGING: dict[str, list[tuple[str, sa.types.TypeEngine]]] = {
    "clients": [("client_id", sa.Integer()), ("client_name", TEXT(200)), ("contact_name", TEXT(100)),
                ("contact_email", TEXT(200)), ("contact_phone", TEXT(40)), ("address", TEXT(200)),
                ("city", TEXT(100)), ("state", TEXT(50)), ("postcode", TEXT(10)), ("country", TEXT(100))],
    "project_types": [("type_id", sa.Integer()), ("type_name", TEXT(100))],
    "users": [("user_id", sa.Integer()), ("name", TEXT(100)), ("role", TEXT(50)), ("email", TEXT(200)),
              ("created_at", SOURCE_TIMESTAMP)],
    "projects": [("project_id", sa.Integer()), ("project_name", TEXT(200)), ("client_id", sa.Integer()),
                 ("type_id", sa.Integer()), ("status", TEXT(30)), ("priority", TEXT(20)), ("start_date", sa.Date()),
                 ("end_date", sa.Date()), ("area_hectares", sa.Numeric(10, 2)), ("city", TEXT(100)),
                 ("state", TEXT(50)), ("contract_value", MONEY), ("agreed_fee", MONEY),
                 ("created_at", SOURCE_TIMESTAMP), ("updated_at", SOURCE_TIMESTAMP)],
    "services": [("service_id", sa.Integer()), ("project_id", sa.Integer()), ("phase", TEXT(50)),
                 ("service_code", TEXT(20)), ("service_name", TEXT(200)), ("unit_type", TEXT(20)),
                 ("unit_qty", sa.Numeric(10, 2)), ("unit_rate", MONEY), ("lump_sum_fee", MONEY),
                 ("agreed_fee", MONEY), ("status", TEXT(20)), ("progress_pct", sa.Numeric(5, 2)),
                 ("claimed_to_date", MONEY), ("assigned_user_id", sa.Integer()), ("created_at", SOURCE_TIMESTAMP),
                 ("updated_at", SOURCE_TIMESTAMP)],
    "reviews": [("review_id", sa.Integer()), ("service_id", sa.Integer()), ("cycle_no", sa.Integer()),
                ("planned_date", sa.Date()), ("due_date", sa.Date()), ("status", TEXT(20)),
                ("weight_factor", sa.Numeric(5, 2)), ("disciplines", TEXT(200)), ("deliverables", TEXT(400)),
                ("actual_issued_at", SOURCE_TIMESTAMP), ("assigned_user_id", sa.Integer())],
    "issue_categories": [("category_id", sa.Integer()), ("category_name", TEXT(100)),
                         ("parent_category_id", sa.Integer()), ("category_level", sa.SmallInteger()),
                         ("is_active", sa.Boolean()), ("created_at", SOURCE_TIMESTAMP),
                         ("updated_at", SOURCE_TIMESTAMP)],
    "status_map": [("source_system", TEXT(20)), ("raw_status", TEXT(50)), ("normalized_status", TEXT(30)),
                   ("is_closed", sa.Boolean())],
    "priority_map": [("source_system", TEXT(20)), ("raw_priority", TEXT(50)), ("normalized_priority", TEXT(20))],
    "issues": [("source", TEXT(20)), ("issue_id", sa.Integer()), ("source_issue_id", TEXT(64)),
               ("source_project_id", TEXT(64)), ("pm_project_id", sa.Integer()), ("project_name", TEXT(200)),
               ("title", TEXT(500)), ("status", TEXT(50)), ("priority", TEXT(50)), ("assignee", TEXT(100)),
               ("author", TEXT(100)), ("created_at", SOURCE_TIMESTAMP), ("closed_at", SOURCE_TIMESTAMP),
               ("source_updated_at", SOURCE_TIMESTAMP), ("is_deleted", sa.Boolean()),
               ("deleted_at", SOURCE_TIMESTAMP)],
    "processed_issues": [("source", TEXT(20)), ("source_issue_id", TEXT(64)), ("urgency_score", SCORE),
                         ("complexity_score", SCORE), ("sentiment_score", SCORE),
                         ("categorization_confidence", SCORE), ("discipline_category_id", sa.Integer()),
                         ("primary_category_id", sa.Integer()), ("secondary_category_id", sa.Integer()),
                         ("resolution_days", sa.Integer()), ("is_recurring", sa.Boolean()),
                         ("comment_count", sa.Integer()), ("processed_at", SOURCE_TIMESTAMP),
                         ("processing_version", sa.Integer())],
}  # fmt: skip

# Dimensions: business key columns, then tracked attributes. Instants are UTC.
DIMENSIONS: dict[str, tuple[list[tuple[str, sa.types.TypeEngine]], list[tuple[str, sa.types.TypeEngine]]]] = {
    "client": ([("client_id", sa.Integer())], STAGING["clients"][1:]),
    "project_type": ([("type_id", sa.Integer())], [("type_name", TEXT(100))]),
    "app_user": ([("user_id", sa.Integer())], [("name", TEXT(100)), ("role", TEXT(50)), ("email", TEXT(200)),
                                               ("created_at", INSTANT)]),
    "project": ([("project_id", sa.Integer())],
                [("project_name", TEXT(200)), ("client_id", sa.Integer()), ("type_id", sa.Integer()),
                 ("status", TEXT(30)), ("priority", TEXT(20)), ("start_date", sa.Date()), ("end_date", sa.Date()),
                 ("area_hectares", sa.Numeric(10, 2)), ("city", TEXT(100)), ("state", TEXT(50)),
                 ("contract_value", MONEY), ("agreed_fee", MONEY), ("created_at", INSTANT)]),
    "issue_category": ([("category_id", sa.Integer())],
                       [("category_name", TEXT(100)), ("parent_category_id", sa.Integer()),
                        ("category_level", sa.SmallInteger()), ("discipline_category_id", sa.Integer()),
                        ("is_active", sa.Boolean()), ("created_at", INSTANT)]),
    "status_map": ([("source_system", TEXT(20)), ("raw_status", TEXT(50))],
                   [("normalized_status", TEXT(30)), ("is_closed", sa.Boolean())]),
    "priority_map": ([("source_system", TEXT(20)), ("raw_priority", TEXT(50))],
                     [("normalized_priority", TEXT(20))]),
    "service": ([("service_id", sa.Integer())],
                [("project_id", sa.Integer()), ("phase", TEXT(50)), ("service_code", TEXT(20)),
                 ("service_name", TEXT(200)), ("unit_type", TEXT(20)), ("unit_qty", sa.Numeric(10, 2)),
                 ("unit_rate", MONEY), ("lump_sum_fee", MONEY), ("agreed_fee", MONEY), ("status", TEXT(20)),
                 ("progress_pct", sa.Numeric(5, 2)), ("claimed_to_date", MONEY), ("assigned_user_id", sa.Integer()),
                 ("created_at", INSTANT)]),
    "review": ([("review_id", sa.Integer())],
               [("service_id", sa.Integer()), ("cycle_no", sa.Integer()), ("planned_date", sa.Date()),
                ("due_date", sa.Date()), ("status", TEXT(20)), ("weight_factor", sa.Numeric(5, 2)),
                ("disciplines", TEXT(200)), ("deliverables", TEXT(400)), ("actual_issued_at", INSTANT),
                ("assigned_user_id", sa.Integer())]),
    "issue": ([("source_system", TEXT(20)), ("source_project_id", TEXT(64)), ("source_issue_id", TEXT(64))],
              [("issue_number", sa.Integer()), ("project_id", sa.Integer()), ("project_resolution", TEXT(10)),
               ("tracker_project_name", TEXT(200)), ("title", TEXT(500)), ("raw_status", TEXT(50)),
               ("raw_priority", TEXT(50)), ("assignee", TEXT(100)), ("author", TEXT(100)), ("created_at", INSTANT),
               ("closed_at", INSTANT), ("deleted_at", INSTANT)]),
    "issue_analytics": ([("source_system", TEXT(20)), ("source_issue_id", TEXT(64))],
                        [*STAGING["processed_issues"][2:12], ("processed_at", INSTANT),
                         ("processing_version", sa.Integer())]),
}  # fmt: skip

BEGINNING_OF_TIME = datetime(1900, 1, 1, tzinfo=UTC)
END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)  # the open end of a current version
UNKNOWN_KEY = {sa.Integer: -1, sa.SmallInteger: -1, sa.Unicode: "?"}

PROCEDURES = ("warehouse.merge_scd2", *(f"warehouse.load_dim_{name}" for name in DIMENSIONS))
# PostgreSQL only: it creates the session's pg_temp.incoming for the loader. On SQL Server a
# temporary table dies with the procedure that made it, so each loader creates #incoming itself.
POSTGRESQL_HELPERS = ("warehouse.prepare_incoming",)


def _unknown_value(column_type: sa.types.TypeEngine) -> object:
    for kind, value in UNKNOWN_KEY.items():
        if isinstance(column_type, kind):
            return value
    raise TypeError(f"no unknown-member value for {column_type!r}")


def upgrade() -> None:
    op.create_table(
        "run_source",
        sa.Column("run_id", sa.BigInteger, sa.ForeignKey("ctl.run.run_id"), primary_key=True),
        sa.Column("source_object", sa.String(128), primary_key=True),
        sa.Column("source_partition", sa.String(64), primary_key=True),
        sa.Column("strategy", sa.String(20), nullable=False),
        sa.Column("window_from", SOURCE_TIMESTAMP, nullable=True, comment="inclusive; NULL = from the beginning"),
        sa.Column("window_to", SOURCE_TIMESTAMP, nullable=True, comment="inclusive upper bound fixed at run start"),
        sa.Column("watermark_before", SOURCE_TIMESTAMP, nullable=True),
        sa.Column("newest_cursor", SOURCE_TIMESTAMP, nullable=True, comment="newest cursor value staged"),
        sa.Column("watermark_after", SOURCE_TIMESTAMP, nullable=True, comment="set once the rows are committed"),
        sa.Column("rows_read", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        schema="ctl",
    )

    for name, columns in STAGING.items():
        op.create_table(
            name,
            sa.Column("run_id", sa.BigInteger, nullable=False),
            sa.Column("time_zone", sa.String(64), nullable=False, comment="zone of this row's timestamps"),
            *(sa.Column(column, column_type) for column, column_type in columns),
            schema="stg",
        )

    for name, (keys, attributes) in DIMENSIONS.items():
        table = op.create_table(
            name,
            sa.Column(f"{name}_sk", sa.BigInteger, sa.Identity(), primary_key=True),
            *(sa.Column(column, column_type, nullable=False) for column, column_type in keys),
            *(sa.Column(column, column_type) for column, column_type in attributes),
            sa.Column("is_deleted", sa.Boolean, nullable=False),
            sa.Column("row_hash", ROW_HASH, nullable=False),
            sa.Column("valid_from", INSTANT, nullable=False),
            sa.Column("valid_to", INSTANT, nullable=False),
            sa.Column("is_current", sa.Boolean, nullable=False),
            sa.Column("is_inferred", sa.Boolean, nullable=False),
            sa.Column("run_id", sa.BigInteger, nullable=True),
            schema="dim",
        )
        key_names = [column for column, _ in keys]
        op.create_index(
            op.f(f"uq_{name}_current_key"),
            name,
            key_names,
            unique=True,
            schema="dim",
            postgresql_where=sa.text("is_current"),
            mssql_where=sa.text("is_current = 1"),
        )
        op.bulk_insert(
            table,
            [
                {
                    f"{name}_sk": -1,
                    **{column: _unknown_value(column_type) for column, column_type in keys},
                    "is_deleted": False,
                    "row_hash": 0 if op.get_context().dialect.name == "postgresql" else "unknown",
                    "valid_from": BEGINNING_OF_TIME,
                    "valid_to": END_OF_TIME,
                    "is_current": True,
                    "is_inferred": False,
                }
            ],
        )

    for qualified in POSTGRESQL_HELPERS:
        apply_version(qualified, revision, dialects=("postgresql",))
    for qualified in PROCEDURES:
        apply_version(qualified, revision)


def downgrade() -> None:
    for qualified in reversed(PROCEDURES):
        revert_version(qualified, revision, kind="procedure")
    for qualified in POSTGRESQL_HELPERS:
        revert_version(qualified, revision, kind="procedure", dialects=("postgresql",))
    for name in reversed(DIMENSIONS):
        op.drop_table(name, schema="dim")
    for name in reversed(STAGING):
        op.drop_table(name, schema="stg")
    op.drop_table("run_source", schema="ctl")
