"""Services and projects: the service and project months and the marts built on them, as the rules say.

Written from shared/docs/business-rules.md (Services and reviews, Facts) and the README's definitions of
``fact.service_monthly``, ``fact.project_monthly`` and the marts (their header comments), never from the
procedures. ProjectServices, ServiceReviews, projects, clients and project types have no trustworthy change
time: a state starts at the as-of of the first run that saw it, and a service's or project's first state at
its ``created_at`` (the source's own record of when it began).
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from model import timeline
from model.history import History, Run
from model.timeline import Version, Versions, loaded_versions, rounded

OBJECTS: tuple[str, ...] = (
    "fact.service_monthly",
    "fact.project_monthly",
    "mart.service_financials",
    "mart.project_overview",
    "mart.project_scorecard",
)

UNKNOWN = -1
UNRESOLVED = "Unresolved"  # the unknown project's name in the project marts
COMPLETED_REVIEW = {"completed", "report_issued", "closed"}
CANCELLED_REVIEW = "cancelled"

Table = dict[tuple, dict[str, Any]]
Values = dict[str, Any]  # a source row or a model row: columns of many types


# --- numbers ----------------------------------------------------------------------------------------------


def earned_value(fee: Decimal | None, progress: Decimal | None) -> Decimal | None:
    """Earned value = agreed_fee x progress_pct / 100, money (DECIMAL(18,2))."""
    if fee is None or progress is None:
        return None
    return rounded(fee * progress / 100, 2)


def difference(earned: Decimal | None, claimed: Decimal | None) -> Decimal | None:
    """Variance = earned value - claimed (both already money)."""
    return None if earned is None or claimed is None else earned - claimed


def fiscal(month: date, start_month: int) -> tuple[int, int, int]:
    """(fiscal year, quarter, month number): the year starts on the 1st of ``start_month`` and is labelled
    by the calendar year in which it ends."""
    number = (month.month - start_month) % 12 + 1
    year = month.year + (1 if start_month != 1 and month.month >= start_month else 0)
    return year, (number - 1) // 3 + 1, number


# --- the rows each run loaded (quarantine: business-rules.md, Domains; README, Rejected rows) -------------


def _bad_number(value: object) -> bool:
    return isinstance(value, (Decimal, float)) and not math.isfinite(value)


def _outside(row: Values, non_negative: tuple[str, ...], percentages: tuple[str, ...]) -> bool:
    """A row outside its domain: NaN or an infinity anywhere, a negative money value, a percentage off 0-100."""
    if any(_bad_number(value) for value in row.values()):
        return True
    if any(row.get(c) is not None and row[c] < 0 for c in non_negative):
        return True
    return any(row.get(c) is not None and not 0 <= row[c] <= 100 for c in percentages)


def _rejected(table: str, row: Values, run: Run, zone: str) -> bool:
    """Whether a run quarantined the row instead of loading it."""
    if table == "ProjectServices":
        return _outside(row, ("unit_rate", "lump_sum_fee", "agreed_fee", "claimed_to_date"), ("progress_pct",))
    if table == "projects":
        return _outside(row, ("contract_value", "agreed_fee"), ())
    if table == "ServiceReviews":
        issued = timeline.to_utc(row.get("actual_issued_at"), zone)
        return _outside(row, (), ()) or (issued is not None and issued > run.as_of)
    return _outside(row, (), ())


def master_versions(history: History, table: str, key_column: str) -> Versions:
    """A master-data table's versions as loaded (timeline.loaded_versions with this group's quarantine rules)."""
    zone = history.settings.source_timezone
    return loaded_versions(history, table, lambda r: r[key_column], lambda row, run: _rejected(table, row, run, zone))


# --- states at an instant ---------------------------------------------------------------------------------


def state_at(known: list[Version], instant: datetime, *, before: bool, born: datetime | None = None) -> Values | None:
    """The row in effect at ``instant`` (strictly before it with ``before``), None when it did not exist yet
    or was gone. It exists from ``born`` (a created_at) where given, else from its first version."""
    start = born if born is not None else known[0].valid_from
    if start > instant or (before and start == instant):
        return None
    return timeline.in_effect(known, instant, before=before).row


def latest_row(known: list[Version]) -> Values | None:
    """The current version's attributes: a deleted key's current (deleted) version keeps its last values."""
    for version in reversed(known):
        if version.row is not None:
            return version.row
    return None


def version_row(known: list[Version], instant: datetime, *, before: bool) -> Values | None:
    """The attributes of the version in effect at ``instant`` (the earliest before the first one; a deleted
    version's are its predecessor's)."""
    chosen = timeline.in_effect(known, instant, before=before)
    return latest_row(known[: known.index(chosen) + 1])


def _born(row: Values | None) -> datetime | None:
    """A service's or project's created_at (UTC in the source) as its first version's start."""
    return timeline.utc(row.get("created_at")) if row else None


class World:
    """Every master-data version the runs loaded, and the months the warehouse has."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.zone = history.settings.business_timezone
        self.as_of = history.runs[-1].as_of
        self.as_of_date = timeline.local_date(self.as_of, self.zone)
        self.services = master_versions(history, "ProjectServices", "service_id")
        self.reviews = master_versions(history, "ServiceReviews", "review_id")
        self.projects = master_versions(history, "projects", "project_id")
        self.clients = master_versions(history, "clients", "client_id")
        self.types = master_versions(history, "project_types", "type_id")

    def months(self, *, projects: bool = False) -> list[date]:
        """Every month from the first run's as-of month to the last's; for the project months, from the first
        snapshot date's month (a back-fill before the first run adds its months, README: Backfilling)."""
        history = self.history
        first_run = timeline.local_date(history.runs[0].as_of, self.zone)
        first = timeline.first_snapshot_date(history) if projects else first_run
        month = timeline.month_start(first)
        last = timeline.month_start(self.as_of_date)
        found = []
        while month <= last:
            found.append(month)
            month = timeline.month_end(month) + timedelta(days=1)
        return found

    def moment(self, month: date) -> tuple[datetime, bool, date]:
        """When a month's state is taken: (instant, strictly before it, the local date its dates compare
        with): the as-of for the as-of month, else the end of its last day."""
        if month == timeline.month_start(self.as_of_date):
            return self.as_of, False, self.as_of_date
        last = timeline.month_end(month)
        return timeline.day_end(last, self.zone), True, last

    def service_at(self, service_id: Hashable, instant: datetime, before: bool) -> Values | None:
        known = self.services[service_id]
        return state_at(known, instant, before=before, born=_born(known[0].row))

    def project_exists(self, project_id: Hashable, instant: datetime, before: bool) -> bool:
        known = self.projects.get(project_id)
        return known is not None and state_at(known, instant, before=before, born=_born(known[0].row)) is not None

    def project_name_then(self, project_id: int | None, instant: datetime, before: bool) -> tuple[int, object]:
        """(project_id, name) of the project version a fact row points at; -1 for none, an inferred member
        (never loaded) has no name."""
        if project_id is None:
            return UNKNOWN, None
        known = self.projects.get(project_id)
        row = version_row(known, instant, before=before) if known else None
        return project_id, row["project_name"] if row else None

    def current_project(self, project_id: Hashable) -> Values | None:
        known = self.projects.get(project_id)
        return latest_row(known) if known else None

    def current_name(self, versions: Versions, key: object, column: str) -> object:
        known = versions.get(key)
        row = latest_row(known) if known else None
        return row[column] if row else None


# --- fact.service_monthly -----------------------------------------------------------------------------------


def _review_counts(world: World, service_id: Hashable, instant: datetime, before: bool, today: date) -> dict[str, int]:
    """The service's reviews then: total (not cancelled, not deleted), completed, overdue (neither completed
    nor cancelled, and COALESCE(due_date, planned_date) before the day's date)."""
    total = completed = overdue = 0
    for known in world.reviews.values():
        review = state_at(known, instant, before=before)
        if review is None or review["service_id"] != service_id:
            continue
        status = str(review["status"] or "").strip().lower()
        if status == CANCELLED_REVIEW:
            continue
        total += 1
        if status in COMPLETED_REVIEW:
            completed += 1
        else:
            target = review["due_date"] or review["planned_date"]
            overdue += target is not None and target < today
    return {"reviews_total": total, "reviews_completed": completed, "reviews_overdue": overdue}


def service_monthly(world: World) -> Table:
    """One row per (month, service that exists then): the state at the month's end, or at the as-of."""
    table: Table = {}
    for month in world.months():
        instant, before, today = world.moment(month)
        for service_id in sorted(world.services, key=repr):
            service = world.service_at(service_id, instant, before)
            if service is None:
                continue
            earned = earned_value(service["agreed_fee"], service["progress_pct"])
            claimed = rounded(service["claimed_to_date"], 2)
            table[(month, service_id)] = {
                "service_sk": (service_id, service["status"]),
                "project_sk": world.project_name_then(service["project_id"], instant, before),
                "agreed_fee": rounded(service["agreed_fee"], 2),
                "progress_pct": rounded(service["progress_pct"], 2),
                "earned_value": earned,
                "claimed": claimed,
                "variance": difference(earned, claimed),
                "unit_qty": rounded(service["unit_qty"], 2),
                **_review_counts(world, service_id, instant, before, today),
            }
    return table


# --- fact.project_monthly -----------------------------------------------------------------------------------

ISSUE_COLUMNS = ("issues_total", "issues_open", "issues_closed", "high_priority_open")
REVIEW_COLUMNS = ("reviews_total", "reviews_completed", "reviews_overdue")
SERVICE_COLUMNS = (*REVIEW_COLUMNS, "services_in_progress", "services_completed")
MONEY_COLUMNS = ("earned_value", "claimed", "variance")


def _empty_project_row() -> Values:
    row: Values = dict.fromkeys(ISSUE_COLUMNS + SERVICE_COLUMNS, 0)
    row.update(dict.fromkeys(MONEY_COLUMNS, Decimal("0.00")), avg_resolution_days=None)
    return row


def issue_daily_rows(history: History) -> Table:
    """Helper A's model of the daily snapshot (tests/model/issues.py)."""
    from model import issues  # type: ignore[attr-defined]

    return issues.issue_daily(history)  # type: ignore[no-any-return]


def project_monthly(world: World, services: Table, daily: Table) -> Table:
    """One row per (month, project): issues from the daily snapshot on the month's last day (the as-of date
    for the as-of month), reviews, services and money from the service months; a row for every project that
    exists then and for every project (the unknown one, -1, included) that issues or services count under,
    so a month's rows add up to the snapshots'."""
    table: Table = {}
    by_day: dict[date, list[Values]] = {}
    for key, row in daily.items():
        by_day.setdefault(key[0], []).append(row)
    for month in world.months(projects=True):
        instant, before, today = world.moment(month)
        rows: dict[Hashable, Values] = {
            project_id: _empty_project_row()
            for project_id in world.projects
            if world.project_exists(project_id, instant, before)
        }
        resolution: dict[Hashable, list[int]] = {}
        for issue in by_day.get(today, []):
            project_id = issue["project_id"] if issue["project_id"] is not None else UNKNOWN
            row = rows.setdefault(project_id, _empty_project_row())
            row["issues_total"] += 1
            row["issues_open"] += bool(issue["is_open"])
            row["issues_closed"] += bool(issue["is_closed"])
            row["high_priority_open"] += bool(issue["is_open"] and issue["is_high_priority"])
            if issue["is_closed"] and issue["resolution_days"] is not None:
                resolution.setdefault(project_id, []).append(issue["resolution_days"])
        for (service_month, _), service in services.items():
            if service_month != month:
                continue
            project_id = service["project_sk"][0]
            row = rows.setdefault(project_id, _empty_project_row())
            for column in REVIEW_COLUMNS:
                row[column] += service[column]
            status = service["service_sk"][1]
            row["services_in_progress"] += status == "in_progress"
            row["services_completed"] += status == "completed"
            for column in MONEY_COLUMNS:
                row[column] += service[column] or 0
        for project_id, values in resolution.items():
            rows[project_id]["avg_resolution_days"] = rounded(Decimal(sum(values)) / len(values), 1)
        for project_id, row in rows.items():
            table[(month, project_id)] = row
    return table


# --- marts --------------------------------------------------------------------------------------------------


def service_financials(world: World, services: Table) -> Table:
    """Per (month, service): the service month with the month's fiscal year and the current names."""
    table: Table = {}
    start = world.history.settings.fiscal_year_start_month
    for (month, service_id), fact in services.items():
        project_id = fact["project_sk"][0]
        project = world.current_project(project_id)
        service = latest_row(world.services[service_id])
        table[(month, service_id)] = {
            "fiscal_year": fiscal(month, start)[0],
            "project_id": project_id,
            "project_name": project["project_name"] if project else None,
            "client_name": world.current_name(world.clients, project["client_id"], "client_name") if project else None,
            "service_code": service["service_code"] if service else None,
            "service_name": service["service_name"] if service else None,
            **{c: fact[c] for c in ("agreed_fee", "progress_pct", "earned_value", "claimed", "variance",
                                    "reviews_total", "reviews_completed", "reviews_overdue")},
        }  # fmt: skip
    return table


def _names(world: World, project_id: Hashable) -> Values:
    """A project's current name, client and type; the unknown project is 'Unresolved'."""
    project = world.current_project(project_id)
    return {
        "project_name": UNRESOLVED if project_id == UNKNOWN else (project["project_name"] if project else None),
        "client_name": world.current_name(world.clients, project["client_id"], "client_name") if project else None,
        "project_type": world.current_name(world.types, project["type_id"], "type_name") if project else None,
    }


def project_overview(world: World, projects: Table) -> Table:
    """Per (month, project): the project month with fiscal year, quarter and month and the current names."""
    table: Table = {}
    start = world.history.settings.fiscal_year_start_month
    for (month, project_id), fact in projects.items():
        year, quarter, number = fiscal(month, start)
        table[(month, project_id)] = {
            "fiscal_year": year,
            "fiscal_quarter": quarter,
            "fiscal_month": number,
            **_names(world, project_id),
            **fact,
        }
    return table


def _previous_month(month: date) -> date:
    return timeline.month_start(month - timedelta(days=1))


def project_scorecard(world: World, overview: Table, projects: Table) -> Table:
    """The current month's project rows (the latest run's as-of month), with the change in open issues and
    variance since the previous month's end, the review completion rate and what needs attention first."""
    table: Table = {}
    month = timeline.month_start(world.as_of_date)
    previous_month = _previous_month(month)
    for (row_month, project_id), row in overview.items():
        if row_month != month:
            continue
        previous = projects.get((previous_month, project_id))
        total, completed = row["reviews_total"], row["reviews_completed"]
        table[(month, project_id)] = {
            "fiscal_year": row["fiscal_year"],
            **{c: row[c] for c in ("project_name", "client_name", "project_type", "issues_open")},
            "issues_open_change": row["issues_open"] - previous["issues_open"] if previous else None,
            **{c: row[c] for c in ("high_priority_open", "avg_resolution_days", "reviews_total",
                                   "reviews_completed", "reviews_overdue")},
            "review_completion_rate": rounded(Decimal(completed) / total, 3) if total else None,
            **{c: row[c] for c in ("services_in_progress", "services_completed", "earned_value", "claimed",
                                   "variance")},
            "variance_change": row["variance"] - previous["variance"] if previous else None,
            "attention": _attention(row),
        }  # fmt: skip
    return table


def _attention(row: Values) -> str | None:
    """The first that applies: overdue reviews, open high-priority issues, claimed ahead of progress."""
    if row["reviews_overdue"]:
        return "overdue reviews"
    if row["high_priority_open"]:
        return "high-priority issues"
    if row["variance"] is not None and row["variance"] < 0:
        return "claimed ahead of progress"
    return None


# --- the model and the warehouse ------------------------------------------------------------------------------


def expected(history: History, daily: Table | None = None) -> dict[str, Table]:
    """What every object of the group must hold after the last run of ``history``."""
    world = World(history)
    services = service_monthly(world)
    found = {"fact.service_monthly": services, "mart.service_financials": service_financials(world, services)}
    if daily is None:
        try:
            daily = issue_daily_rows(history)
        except (ImportError, AttributeError):
            return found  # the issue model is not there yet: the service side only
    projects = project_monthly(world, services, daily)
    overview = project_overview(world, projects)
    found.update({
        "fact.project_monthly": projects,
        "mart.project_overview": overview,
        "mart.project_scorecard": project_scorecard(world, overview, projects),
    })  # fmt: skip
    return found


def _month(key: int) -> date:
    return date(key // 10000, key // 100 % 100, key % 100)


def _rows(conn: sa.Connection, sql: str) -> list[Values]:
    return [dict(row._mapping) for row in conn.execute(sa.text(sql))]


# the service month with the attributes of the versions its surrogate keys point at
SERVICE_MONTHS = """
    SELECT f.*, s.service_id AS sk_service_id, s.status AS sk_status, p.project_id AS sk_project_id,
        p.project_name AS sk_project_name
    FROM fact.service_monthly AS f
    LEFT JOIN dim.service AS s ON s.service_sk = f.service_sk
    LEFT JOIN dim.project AS p ON p.project_sk = f.project_sk"""


def actual(conn: sa.Connection) -> dict[str, Table]:
    """The group's objects as the warehouse holds them, surrogate keys read through their dimensions."""
    found: dict[str, Table] = {name: {} for name in OBJECTS}
    for row in _rows(conn, SERVICE_MONTHS):
        found["fact.service_monthly"][(_month(row["month_date_key"]), row["service_id"])] = {
            "service_sk": (row["sk_service_id"], row["sk_status"]),
            "project_sk": (row["sk_project_id"] if row["project_sk"] != UNKNOWN else UNKNOWN,
                           row["sk_project_name"] if row["project_sk"] != UNKNOWN else None),
            **{c: row[c] for c in ("agreed_fee", "progress_pct", "earned_value", "claimed", "variance", "unit_qty",
                                   "reviews_total", "reviews_completed", "reviews_overdue")},
        }  # fmt: skip
    for row in _rows(conn, "SELECT * FROM fact.project_monthly"):
        key = (_month(row.pop("month_date_key")), row.pop("project_id"))
        row.pop("run_id")
        found["fact.project_monthly"][key] = row
    for name, key_columns in (("mart.service_financials", ("month", "service_id")),
                              ("mart.project_overview", ("month", "project_id")),
                              ("mart.project_scorecard", ("month", "project_id"))):  # fmt: skip
        for row in _rows(conn, f"SELECT * FROM {name}"):
            key = tuple(row.pop(c) for c in key_columns)
            found[name][key] = row
    return found
