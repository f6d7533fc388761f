"""Rows already loaded: a cursor pull drops the rows of its look-back window that it loaded before.

Why: a cursor pull re-reads its look-back window every run, because late commits hide there; in a quiet
day most of what it stages is rows a previous run loaded unchanged. Each of those used to cost the merge
a probe of the dimension's current-row index (random reads in a million-row table), about two thirds of
a one-day delta's probes on the issue dimensions. ``ctl.loaded_row`` keeps, per cursor source, a hash of
the key and of the whole staged row of each row whose load committed and that the next pull can read
again (its cursor is inside that pull's window); the pull deletes the staged rows found there, a hash
join of two small sets (issue #3: "de-duplication by key and row hash"). ``ctl.run_source_load`` records,
per run and cursor-source partition, the re-read rows the pull dropped (NULL: not compared, as in a first
or full pull) and ``loaded_at``, set in the same transaction as the dimension load: only the rows of a
load that committed are ever remembered. (A table of its own rather than columns of ``ctl.run_source``:
a downgrade then loses nothing that the older revision holds.)
Risk: new tables only. Downgrade drops them with their data (the next pull then compares nothing).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ROW_HASH = sa.String(32).with_variant(sa.BigInteger(), "postgresql")
SOURCE_TIMESTAMP = sa.DateTime().with_variant(mssql.DATETIME2(precision=7), "mssql")


def upgrade() -> None:
    op.create_table(
        "loaded_row",
        sa.Column("source_object", sa.String(128), primary_key=True, comment="flows/sources.py name"),
        sa.Column("key_hash", ROW_HASH, primary_key=True, comment="hash of the business key's values"),
        sa.Column("source_partition", sa.String(64), nullable=False, comment="watermark partition; '' if none"),
        sa.Column("row_hash", ROW_HASH, nullable=False, comment="hash of every staged column but run_id"),
        sa.Column(
            "cursor_value", SOURCE_TIMESTAMP, nullable=True, comment="as staged; kept while a pull can re-read it"
        ),
        schema="ctl",
        comment="cursor-source rows whose load committed, for the next pull to drop when it re-reads them unchanged",
    )
    op.create_table(
        "run_source_load",
        sa.Column("run_id", sa.BigInteger, sa.ForeignKey("ctl.run.run_id"), primary_key=True),
        sa.Column("source_object", sa.String(128), primary_key=True),
        sa.Column("source_partition", sa.String(64), primary_key=True),
        sa.Column(
            "rows_unchanged",
            sa.BigInteger,
            nullable=True,
            comment="re-read rows identical to rows loaded before, dropped before the load; NULL: not compared",
        ),
        sa.Column(
            "loaded_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when the staged rows reached their dimension (set in that load's transaction)",
        ),
        schema="ctl",
        comment="per run and cursor-source partition: rows dropped as loaded before; whether the load committed",
    )


def downgrade() -> None:
    op.drop_table("run_source_load", schema="ctl")
    op.drop_table("loaded_row", schema="ctl")
