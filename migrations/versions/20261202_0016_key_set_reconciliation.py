"""Key-set reconciliation of cursor sources; a circuit breaker that fits small tables.

Why (issue #13, points 3 and 7): a cursor source is read by its change column, so a key that leaves it is
never seen to go. An issue moved to another tracker project (a new identity) stayed live under its old key,
and Revizto issues removed in the tracker (its deletion flag is always 0) stayed live for ever: the day's
snapshot had one row more than the source had live issues. And the circuit breaker applied its share to
any table of ten rows or more, so deleting one of three clients (33 %) stopped the nightly run.

What: ``stg.issues_keys``, ``stg.processed_issues_keys`` and ``stg.issue_categories_keys`` (run_id and the
business key, typed as in the source's staging table) hold a reconciling run's whole key set of each cursor
source (flows/key_sets.py). New procedure ``warehouse.close_vanished_keys`` closes, as deleted at the source
(a deleted SCD2 version), every live current key of a dimension that a key set lacks, under the circuit
breaker, which now applies its share from a minimum number of live rows (``p_min_rows``; the flow passes
PMW_MAX_DELETE_SHARE_MIN_ROWS, default 20) and below that trips only when every live row would go. New
version of ``warehouse.merge_scd2``: its full compare calls that procedure (one place for hard deletes and
the breaker) and reads the minimum from the transaction setting ``pmw.max_delete_share_min_rows``
(default 20 when unset); its signature is unchanged.
Risk: none for data: three new, empty tables, one new procedure, one replaced in place (no signature change,
so no DROP on PostgreSQL). The first run after the upgrade reads each cursor source's whole key set (on
1,000,000 issues: see the pipeline benchmark's "key-set reconciliation" row) and closes what vanished
before: the issues that moved or were removed since the first load, under the breaker.
Downgrade: restores the previous ``merge_scd2`` (the breaker of ten rows), drops the procedure and the key
tables (they hold only the last run's keys); closed versions stay closed.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.replaceable import apply_version, revert_version

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TEXT = sa.Unicode
# per cursor source: its key set's table and the business key, typed as in its staging table (0003)
KEY_TABLES: dict[str, list[tuple[str, sa.types.TypeEngine]]] = {
    "issues_keys": [("source", TEXT(20)), ("source_project_id", TEXT(64)), ("source_issue_id", TEXT(64))],
    "processed_issues_keys": [("source", TEXT(20)), ("source_issue_id", TEXT(64))],
    "issue_categories_keys": [("category_id", sa.Integer())],
}
# close_vanished_keys first: the new merge_scd2 calls it
PROCEDURES = ("warehouse.close_vanished_keys", "warehouse.merge_scd2")


def upgrade() -> None:
    for name, columns in KEY_TABLES.items():
        # no key or index: filled by one bulk insert per run and read once by an anti-join (a hash join)
        op.create_table(
            name,
            sa.Column("run_id", sa.BigInteger, nullable=False, comment="the run that read this key set"),
            *(sa.Column(column, column_type) for column, column_type in columns),
            schema="stg",
            comment="a cursor source's whole key set, read after the delta (flows/key_sets.py)",
        )
    for qualified in PROCEDURES:
        apply_version(qualified, revision)


def downgrade() -> None:
    revert_version("warehouse.merge_scd2", revision, kind="procedure")  # back to its own breaker first
    revert_version("warehouse.close_vanished_keys", revision, kind="procedure")  # created here: dropped
    for name in KEY_TABLES:
        op.drop_table(name, schema="stg")
