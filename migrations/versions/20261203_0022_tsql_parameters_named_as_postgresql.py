"""The T-SQL calendar load and SCD2 merge take their parameters under PostgreSQL's names (SQL Server only;
issue #15, found by the dialect parity test).

Why: the flow calls ``warehouse.load_dim_date`` by parameter name (``flows/database.call_procedure`` passes
``@p_start_date = ...`` on SQL Server), but its T-SQL version named them ``@start_date``, ``@end_date`` and
``@fiscal_year_start_month``: SQL Server would refuse the call (error 8145, not a parameter of the
procedure), so the first run on SQL Server failed at its calendar step. ``warehouse.merge_scd2`` took
``@dimension``, ``@key_columns``, ``@full_compare``, ``@as_of`` and ``@run_id`` where PostgreSQL takes
``p_dimension`` and so on; only T-SQL procedures call it, so nothing broke, but the two versions could not be
compared. What: the parameters are renamed (``@p_...``), in merge_scd2's dynamic SQL too, and the eleven
``load_dim_*`` callers name the arguments the new way. PostgreSQL is unchanged: no copy of it is frozen here.
Risk: none beyond the renames; a call by position is unaffected. Verified here: every T-SQL text parses and
resolves against the offline schema, merge_scd2's generated statements included (tests/test_tsql_names.py,
tests/test_tsql_dynamic_sql.py), and tests/test_dialect_parity.py compares the signatures; no SQL Server has
run them.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03
"""

from __future__ import annotations

from migrations.replaceable import apply_version, revert_version

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

DIALECTS = ("mssql",)  # PostgreSQL already names them so
PROCEDURES = (
    "warehouse.load_dim_date",
    "warehouse.merge_scd2",
    *(f"warehouse.load_dim_{name}" for name in (
        "app_user", "client", "issue", "issue_analytics", "issue_category", "priority_map", "project",
        "project_type", "review", "service", "status_map",
    )),
)  # fmt: skip


def upgrade() -> None:
    for qualified in PROCEDURES:
        apply_version(qualified, revision, dialects=DIALECTS)


def downgrade() -> None:
    for qualified in reversed(PROCEDURES):
        revert_version(qualified, revision, kind="procedure", dialects=DIALECTS)
