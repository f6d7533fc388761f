"""The fact and bridge loads, declared as data, in load order (after every dimension).

Each is a warehouse procedure taking the run id, the as-of instant and the business time zone; it
reads only the warehouse's own dimensions, so it runs whichever sources a run pulled.
"""

from __future__ import annotations

FACT_PROCEDURES: tuple[str, ...] = (
    "warehouse.load_fact_issue_daily",  # first: it assigns the durable issue keys the events use
    "warehouse.load_fact_issue_event",
    "warehouse.load_brg_issue_category",
    "warehouse.load_fact_review",
    "warehouse.load_fact_service_monthly",
    "warehouse.load_fact_project_monthly",  # last: it aggregates the daily and service snapshots
)
