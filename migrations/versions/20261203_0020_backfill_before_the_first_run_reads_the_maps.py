"""Backfilled days before the first run read the maps as first loaded; the review bridge counts issues alive now.

Both found by the randomized comparison with the independent model (tests/model_check.py, issue #14).

Why: ``pmw run --backfill-from D`` with D before the first snapshot date extends the daily issue snapshot back
(README, Backfilling), but ``warehouse.load_fact_issue_daily`` read each day's maps at the day's end, before
the maps' first load: every status was unmapped there (``status_map_sk`` -1, and every issue counted open,
closed ones too) and every priority took the fallback rule instead of ``issue_priority_map`` (seeds 9, 101,
103, 104). The issue events already read the map as first loaded for instants before it (0018); the snapshot
now does the same, so both facts agree on the past. ``warehouse.load_brg_review_issue`` left out every issue
with a deleted event in its past, so an issue that came back (its flag cleared, or moved back to its tracker
project) counted in no review's window again (seed 106; business-rules.md: deleted issues count in none, and
it is not deleted). What: each map is read at GREATEST(the day's instant, its first load); the bridge reads
the issue's current version. The bridge step's ``ctl.step_state`` row is removed, so the next run derives
every review's rows once (identical rows left alone). Backfilled days already stored come right with the
same backfill run again. Risk: two MIN lookups on the map dimensions per run; one join on the current-row
index of dim.issue per bridge candidate; the bridge's first run after the upgrade reads every window, as a
first load does (2.0 s for 344,000 rows in the README's benchmark). Downgrade re-applies the previous frozen
texts and removes the bridge step's state again.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

from migrations.replaceable import apply_version, revert_version

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


PROCEDURES = ("warehouse.load_fact_issue_daily", "warehouse.load_brg_review_issue")
# its rows are derived again by the next run, as on a first load: the rule changed for rows already stored
REDERIVED_STEPS = ("warehouse.load_brg_review_issue",)
REDERIVE = "DELETE FROM ctl.step_state WHERE step_name IN ('" + "', '".join(REDERIVED_STEPS) + "')"


def upgrade() -> None:
    for qualified in PROCEDURES:
        apply_version(qualified, revision)
    op.execute(REDERIVE)


def downgrade() -> None:
    for qualified in reversed(PROCEDURES):
        revert_version(qualified, revision, kind="procedure")
    op.execute(REDERIVE)
