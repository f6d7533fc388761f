"""The fact and bridge loads, declared as data, in load order (after every dimension).

Each is a warehouse procedure taking the run id, the as-of instant, the business time zone and
``p_since_run_id``: the last run whose fact phase committed, which the run log keeps per procedure in
``ctl.step_state`` (what changed since then is what the procedure recomputes, never "what this run
wrote"). Some take more, declared here. They read only the warehouse's own tables, so they run whichever
sources a run pulled, and they run in one transaction: a run publishes all of its facts or none.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FactLoad:
    """One fact or bridge procedure and what it needs besides the common parameters."""

    procedure: str
    writes: tuple[str, ...]  # the tables it writes, the first one first
    settings: dict[str, str] = field(default_factory=dict)  # parameter -> Settings field
    since_as_of: bool = False  # takes p_since_as_of, the as-of of the run behind p_since_run_id
    backfill: bool = False  # takes p_recompute_from, a backfill's first local date


FACT_LOADS: tuple[FactLoad, ...] = (
    # first: facts then point at inferred members, not at the unknown member
    FactLoad("warehouse.add_inferred_members",
             ("dim.service", "dim.project", "dim.client", "dim.project_type", "dim.app_user", "dim.issue_category")),
    # before the events: it assigns the durable issue keys they use
    FactLoad("warehouse.load_fact_issue_daily", ("dim.issue_key", "fact.issue_daily"), backfill=True),
    FactLoad("warehouse.load_fact_issue_event", ("fact.issue_event",)),
    FactLoad("warehouse.load_brg_issue_category", ("brg.issue_category",)),
    # after the issue events it links
    FactLoad("warehouse.load_brg_review_issue", ("brg.review_issue",),
             settings={"p_window_days": "review_issue_window_days"}),
    FactLoad("warehouse.load_fact_review", ("fact.review",)),
    FactLoad("warehouse.load_fact_review_event", ("fact.review_event",)),
    FactLoad("warehouse.load_fact_service_monthly", ("fact.service_monthly",), since_as_of=True),
    # last: it aggregates the daily and service snapshots
    FactLoad("warehouse.load_fact_project_monthly", ("fact.project_monthly",)),
)  # fmt: skip

FACT_LOADS_BY_PROCEDURE = {load.procedure: load for load in FACT_LOADS}
FACT_PROCEDURES: tuple[str, ...] = tuple(load.procedure for load in FACT_LOADS)
