"""Issue facts, bridges and marts corrected where they differed from the independent model (issue #14).

Why (found by comparing the warehouse with tests/model/issues.py after nine runs of the demo source):
``warehouse.load_fact_issue_event`` gave an issue first seen both closed and deleted (closed, then deleted
before the warehouse first read it) only its deleted event, so it was closed on no day, unlike an issue the
warehouse saw close and later be deleted; README: an issue first seen closed or deleted gets the event at its
closed_at / deleted_at, so one first seen closed and deleted gets both. ``warehouse.load_brg_issue_category``
re-derived only the issues whose analytics changed, so an issue moved to another tracker project (a new
identity, README "Facts", whose analytics row is as old as the issue) never got its bridge rows, and a
category renamed (a new ``dim.issue_category`` version) left every bridge row on the old version, where README
says the category's current version; ``mart.issue_trend`` showed such moved issues as ``Unassigned``.
The event loader also read every version's closed flag with the current status map, so after a map change
an issue that changed again had its whole past re-read (a ``closed`` event at its creation for a status
the map now calls closed) while one that did not change kept its events: the events depended on which
issues happened to change, and contradicted the daily snapshot's past days, which read each day's map.
What: the event loader also emits the first-seen closed event of deleted issues, and reads both statuses of
a change with the status map in effect at the change (the map as first loaded for a change before that);
``warehouse.load_dim_issue`` resolved an issue's project by its tracker project name again on every load of
its row, so a full refresh (or any re-read) after the PM project was renamed gave the unchanged issue a new
version without a project: its snapshot rows moved to the unknown project, where business-rules.md says a
change to a parent neither re-versions its children nor orphans their facts. Now an issue resolved by name
keeps that project while its tracker project name stays the same.
The bridge loader also re-derives issues with an issue version written since its last run and issues whose
rows point at a category version that is no longer current. Both steps' ``ctl.step_state`` rows are
removed, so the next run derives every issue's events and bridge rows once (as on a first load; identical
rows are left alone, the others replaced with that run's id).
The randomized comparison (tests/model_check.py, seed 4) then found that an issue created and flag-deleted
between two runs (first seen deleted) had no daily snapshot row for the days it lived: its only version is
deleted, and ``warehouse.load_fact_issue_daily`` took no deleted version as alive; business-rules.md: a row for
every issue that exists and is not deleted at the end of the day. A deleted version now counts as alive at an
instant before its ``deleted_at`` (only a first-seen-deleted issue's version starts before its deletion).
Rows missing from days already snapshotted come back with ``pmw run --backfill-from <first snapshot date>``.
Risk: four procedures replaced (no data, no lock beyond their own writes). The next run after the upgrade
derives events and bridge rows for all issues, as a first load does (at 10,000 issues, seconds), and
rewrites the events that change (closed events gained, closed events from a re-read past dropped). The
event loader now looks statuses up per (spelling, instant of the change) rather than per spelling: more
rows on a first load (one per version), still a hash join against the small map. The review-issue bridge
links the closed events gained, as it does for an issue seen closing.
Downgrade re-applies the procedures' previous frozen texts (PostgreSQL: 0013's issue loader, 0014's snapshot
and event loaders, 0013's bridge loader; SQL Server: 0003's issue loader, 0014's snapshot and event loaders,
0012's bridge loader); it removes the step states again, so the next run re-derives under the old rules
(dropping the added closed events).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

from migrations.replaceable import apply_version, revert_version

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

FACT_PROCEDURES = ("warehouse.load_fact_issue_event", "warehouse.load_brg_issue_category")
ISSUE_PROCEDURES = ("warehouse.load_dim_issue", "warehouse.load_fact_issue_daily", *FACT_PROCEDURES)
# their rows are derived again by the next run, as on a first load: the rules changed for rows already stored
REDERIVED_STEPS = FACT_PROCEDURES
REDERIVE = "DELETE FROM ctl.step_state WHERE step_name IN ('" + "', '".join(REDERIVED_STEPS) + "')"


def upgrade() -> None:
    for qualified in ISSUE_PROCEDURES:
        apply_version(qualified, revision)
    op.execute(REDERIVE)


def downgrade() -> None:
    for qualified in reversed(ISSUE_PROCEDURES):
        revert_version(qualified, revision, kind="procedure")
    op.execute(REDERIVE)
