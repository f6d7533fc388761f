"""The fact and bridge loads, declared as data, in load order (after every dimension).

Each is a warehouse procedure taking the run id, the as-of instant and the business time zone (and
the settings named in SETTING_ARGUMENTS); it reads only the warehouse's own tables, so it runs
whichever sources a run pulled.
"""

from __future__ import annotations

FACT_PROCEDURES: tuple[str, ...] = (
    "warehouse.add_inferred_members",  # first: facts then point at them, not at the unknown member
    "warehouse.load_fact_issue_daily",  # before the events: it assigns the durable issue keys they use
    "warehouse.load_fact_issue_event",
    "warehouse.load_brg_issue_category",
    "warehouse.load_brg_review_issue",  # after the issue events it links
    "warehouse.load_fact_review",
    "warehouse.load_fact_review_event",
    "warehouse.load_fact_service_monthly",
    "warehouse.load_fact_project_monthly",  # last: it aggregates the daily and service snapshots
)

# procedure -> {parameter: Settings field}: the settings a procedure takes besides the common three
SETTING_ARGUMENTS: dict[str, dict[str, str]] = {
    "warehouse.load_brg_review_issue": {"p_window_days": "review_issue_window_days"},
}
