"""Source column types checked; offset-less local times resolved by one rule (and recorded).

Why (issue #13, points 4-6): a money column turned into text stopped every pull with a bare cast error, and
Revizto's timestamps turned into ``timestamptz`` were read as wall times and shifted 10-11 hours, silently
(the source check now compares type families: flows/source_schema.py, no DDL). NaN in a fee reached every
monthly total (flows/domains.py quarantines it: no DDL). And local times in the repeated or skipped hour of a
daylight-saving change were resolved silently, differently by each database, and a pair 20 minutes apart
across the repeated hour was quarantined as "closed before created": flows/local_times.py resolves them by
one documented rule, the same in both dialects, before the quarantine's rules and the loaders see them.

What: ``ctl.local_time_resolution`` records every staged local time the rule touched (run, source object,
business key, column, the local wall time as sent, its zone, the instant stored and the reading taken), so
that the warning check ``local_times_resolved`` (flows/checks.toml) can list a run's. The checks run as
``pmw_analyst``, which reads no ``ctl`` table: it gets ``USAGE`` on schema ``ctl`` (PostgreSQL) and
``SELECT`` on this one table only (both dialects). ``pmw_loader`` writes it through its ``ctl`` grants of
0013 (PostgreSQL's default privileges, SQL Server's schema grant). No procedure changes: the conversion is
done in staging (the resolved rows carry time zone ``UTC``), so the loaders store the instants as before.
Risk: none for data: one new, empty table, a few rows per year (the hours of two changes). Downgrade drops it
with its records and revokes the analyst's grants of this revision.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql

from migrations.replaceable import run_as_is

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

TABLE = "local_time_resolution"
SOURCE_TIMESTAMP = sa.DateTime().with_variant(mssql.DATETIME2(precision=7), "mssql")  # as staging has it (0003)
GRANTS = {
    "postgresql": (f"GRANT USAGE ON SCHEMA ctl TO pmw_analyst;\nGRANT SELECT ON ctl.{TABLE} TO pmw_analyst;",
                   f"REVOKE SELECT ON ctl.{TABLE} FROM pmw_analyst;\nREVOKE USAGE ON SCHEMA ctl FROM pmw_analyst;"),
    "mssql": (f"GRANT SELECT ON OBJECT::ctl.{TABLE} TO pmw_analyst;",
              f"REVOKE SELECT ON OBJECT::ctl.{TABLE} FROM pmw_analyst;"),
}  # fmt: skip


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.Column("source_object", sa.String(128), nullable=False),
        sa.Column("business_key", sa.Unicode(200), nullable=False),
        sa.Column("column_name", sa.String(128), nullable=False),
        sa.Column("local_value", SOURCE_TIMESTAMP, nullable=False, comment="the offset-less wall time as sent"),
        sa.Column("time_zone", sa.String(64), nullable=False, comment="the zone it was read in"),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False, comment="the instant stored"),
        sa.Column("resolution", sa.Unicode(200), nullable=False, comment="ambiguous or non-existent; reading taken"),
        schema="ctl",
        comment="staged local times in a daylight-saving change and how they were read (flows/local_times.py)",
    )
    # no primary key: a cursor source may stage two versions of a key in one run; read by run
    op.create_index(op.f(f"ix_{TABLE}_run_id"), TABLE, ["run_id", "source_object"], schema="ctl")
    run_as_is(GRANTS[op.get_context().dialect.name][0])


def downgrade() -> None:
    run_as_is(GRANTS[op.get_context().dialect.name][1])
    op.drop_index(op.f(f"ix_{TABLE}_run_id"), table_name=TABLE, schema="ctl")
    op.drop_table(TABLE, schema="ctl")
