"""Project KPIs have rows for the unknown project; money checks.

Why (issue #13, point 8 and the check side of point 4): issues without a resolved PM project are in the daily
snapshot under the unknown project (-1), and ``warehouse.load_fact_project_monthly`` (revision 0012) does
count them in a ``fact.project_monthly`` row of project -1, as its docstring says; but the project marts lost
them. ``mart.project_scorecard`` joined the current, live, non-unknown ``dim.project`` row, so the -1 row (and
the row of a project deleted at the source whose issues are still live) was dropped and the dashboard's
month did not add up to the snapshot; ``mart.project_overview`` showed the row with no name. Now the overview
names project -1 ``Unresolved`` (as the issue marts do) and the scorecard lists every row the current month
has in ``fact.project_monthly``: the live projects, the unknown project when something without a PM project
is counted, and a deleted project only while issues or services still count under it. The procedure is
unchanged (its incremental choice of months, ``p_since_run_id``, stays as it is).
The money checks (``flows/checks.toml``: ``fact_service_monthly_variance`` and ``fact_project_monthly_counts``
NaN-safe, ``service_claimed_above_fee`` and ``fact_monthly_measures_are_numbers`` new) are data, not schema:
they need nothing here.
Risk: two views replaced (no data, no lock beyond the brief one ``CREATE OR REPLACE VIEW`` takes); the
overview's ``project_name`` keeps its type, so the scorecard built on it need not be dropped. BI reports that
counted the scorecard's rows as "live projects" now see one more row while unresolved issues exist.
Downgrade restores the previous texts (0010's overview, 0012's scorecard).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

from migrations.replaceable import apply_version, revert_version

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

VIEWS = ("mart.project_overview", "mart.project_scorecard")  # the scorecard reads the overview: in this order


def upgrade() -> None:
    for qualified in VIEWS:
        apply_version(qualified, revision)


def downgrade() -> None:
    for qualified in reversed(VIEWS):
        revert_version(qualified, revision, kind="view")
