"""Service and project months: the as-of month recomputed on every run (found by the independent model, issue #14).

Why: ``warehouse.load_fact_service_monthly`` recomputed the as-of month only
when a service, review or project version had been written since the last committed fact phase, so a run on a
later day with no such change left the current month's ``reviews_overdue`` at the previous as-of date's count
(a review whose due date passed in between was not counted overdue; business-rules.md: overdue ⇔
COALESCE(due_date, planned_date) < the as-of local date), and ``fact.project_monthly`` and the marts with it.
``warehouse.load_fact_project_monthly`` likewise recomputed the as-of month only when daily or service
snapshot rows of it had been written: a project created since the last run of the same day, with no issues or
services yet, got no row (and ``fact_monthly_fresh`` failed the run), and a service deleted since then (which
removes its service month without writing one) stayed counted, with its money, in its project's month.
What: both procedures now recompute the as-of month on every run (identical rows are still left alone, so a
run that changes nothing writes nothing). Risk: one month of services and one day of the issue snapshot
aggregated per run (a few hundred rows and one snapshot date's rows); no lock beyond the procedures' own
writes. Downgrade re-applies both procedures' previous frozen texts (0013's on PostgreSQL, 0012's on SQL
Server).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""

from __future__ import annotations

from migrations.replaceable import apply_version, revert_version

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


SERVICE_PROJECT_PROCEDURES = ("warehouse.load_fact_service_monthly", "warehouse.load_fact_project_monthly")


def upgrade() -> None:
    for qualified in SERVICE_PROJECT_PROCEDURES:
        apply_version(qualified, revision)


def downgrade() -> None:
    for qualified in reversed(SERVICE_PROJECT_PROCEDURES):
        revert_version(qualified, revision, kind="procedure")
