"""Reviews: the review snapshot, its events, the review-issue bridge and the review performance mart.

Written from shared/docs/business-rules.md (Services and reviews, Facts, Time) and the README's definitions
of ``fact.review``, ``fact.review_event``, ``brg.review_issue`` and ``mart.review_performance`` (its header
comment), never from the procedures. ServiceReviews has no change column and its rows are hard-deleted: a
state starts at the as-of of the first run that saw it, and a review missing from a run is deleted from that
run's as-of. ``actual_issued_at`` is the source server's local time.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from model import issues, timeline
from model.history import History, Row, Run
from model.timeline import Version, loaded_versions, rounded

OBJECTS: tuple[str, ...] = ("fact.review", "fact.review_event", "brg.review_issue", "mart.review_performance")

UNKNOWN = -1
COMPLETED = {"completed", "report_issued", "closed"}
CANCELLED = "cancelled"
CLOCK_SLACK = timedelta(hours=1)  # a source clock may run this far ahead of the as-of (README, Rejected rows)
EARLIEST, LATEST = date(1900, 1, 1), date(2200, 1, 1)

Table = dict[tuple, dict[str, Any]]
Values = dict[str, Any]


# --- numbers and times ------------------------------------------------------------------------------------


def iso_instant(instant: datetime) -> str:
    """A UTC instant as the event columns write it: ``2026-03-28T14:52:15Z``."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_instant(value: datetime | None) -> datetime | None:
    """A driver timestamp (aware, any zone) as an aware UTC datetime."""
    return None if value is None else value.astimezone(UTC)


# --- the rows each run loaded (business-rules.md, Domains; README, Rejected rows) ---------------------------


def _not_a_number(value: object) -> bool:
    return isinstance(value, (Decimal, float)) and not math.isfinite(value)


def _date_outside(value: object) -> bool:
    """Dates and times outside 1900-2199 are rejected."""
    if isinstance(value, datetime):
        value = value.date()
    return isinstance(value, date) and not EARLIEST <= value < LATEST


def _in_future(wall: datetime | None, run: Run, zone: str) -> bool:
    """A source time later than the run's as-of (its clock slack allowed), compared in the source's own time."""
    if wall is None:
        return False
    return wall > run.as_of.astimezone(ZoneInfo(zone)).replace(tzinfo=None) + CLOCK_SLACK


def _basic_rejected(row: Row) -> bool:
    return any(_not_a_number(v) or _date_outside(v) for v in row.values())


def _review_rejected(row: Row, run: Run, zone: str) -> bool:
    return _basic_rejected(row) or _in_future(row.get("actual_issued_at"), run, zone)


def _service_rejected(row: Row) -> bool:
    money = ("unit_rate", "lump_sum_fee", "agreed_fee", "claimed_to_date")
    if _basic_rejected(row) or any(row.get(c) is not None and row[c] < 0 for c in money):
        return True
    return row.get("progress_pct") is not None and not 0 <= row["progress_pct"] <= 100


def _project_rejected(row: Row) -> bool:
    return _basic_rejected(row) or any(row.get(c) is not None and row[c] < 0 for c in ("contract_value", "agreed_fee"))


def last_row(known: list[Version]) -> Row:
    """The last state the source had (a deleted key keeps its last attributes)."""
    return next(v.row for v in reversed(known) if v.row is not None)


def is_gone(known: list[Version]) -> bool:
    return known[-1].row is None


# --- reviews (business-rules.md, Services and reviews) ----------------------------------------------------


def is_completed(row: Row) -> bool:
    """Completed ⇔ status ∈ {completed, report_issued, closed}."""
    return row.get("status") in COMPLETED


def is_cancelled(row: Row) -> bool:
    return row.get("status") == CANCELLED


def target_date(row: Row) -> date | None:
    """The date a review is held to: COALESCE(due_date, planned_date)."""
    return row.get("due_date") or row.get("planned_date")


def issued_instant(row: Row, source_zone: str) -> datetime | None:
    """actual_issued_at is server-local: its instant."""
    return timeline.to_utc(row.get("actual_issued_at"), source_zone)


def issued_date(row: Row, settings: Any) -> date | None:
    """The local (business time zone) date of actual_issued_at."""
    instant = issued_instant(row, settings.source_timezone)
    return None if instant is None else timeline.local_date(instant, settings.business_timezone)


def review_date(row: Row, settings: Any) -> date | None:
    """A review's date (README, PMW_REVIEW_ISSUE_WINDOW_DAYS): the local date it was issued, else its due date,
    else its planned date."""
    return issued_date(row, settings) or target_date(row)


class Masters:
    """The loaded versions of the master data the review objects refer to."""

    def __init__(self, history: History) -> None:
        zone = history.settings.source_timezone
        self.reviews = loaded_versions(
            history, "ServiceReviews", lambda r: r["review_id"], lambda r, run: _review_rejected(r, run, zone)
        )
        self.services = loaded_versions(
            history, "ProjectServices", lambda r: r["service_id"], lambda r, run: _service_rejected(r)
        )
        self.projects = loaded_versions(
            history, "projects", lambda r: r["project_id"], lambda r, run: _project_rejected(r)
        )
        self.clients = loaded_versions(history, "clients", lambda r: r["client_id"], lambda r, run: _basic_rejected(r))

    def service_project(self, service_id: int | None) -> int:
        """The project of a service's current version (its last attributes when deleted); the unknown project
        when the service was never loaded (an inferred service has no project)."""
        known = self.services.get(service_id)
        if not known:
            return UNKNOWN
        project = last_row(known).get("project_id")
        return UNKNOWN if project is None else project

    def project_names(self, project_id: int) -> tuple[str | None, str | None]:
        """The current project name and its client's current name (the mart's "current names")."""
        known = self.projects.get(project_id)
        if not known:
            return None, None
        project = last_row(known)
        client = self.clients.get(project.get("client_id"))
        return project.get("project_name"), (last_row(client).get("client_name") if client else None)


# --- fact.review (README: the review accumulating snapshot) -----------------------------------------------


def review_fact(history: History, masters: Masters) -> Table:
    """One row per review ever loaded, updated in place: the current state, overdue at the last run's as-of
    date; a review deleted at the source keeps its row (last state, status included), flagged, counted nowhere:
    not completed, not cancelled, not overdue."""
    settings = history.settings
    as_of_date = timeline.local_date(history.runs[-1].as_of, settings.business_timezone)
    rows: Table = {}
    for review_id, known in masters.reviews.items():
        row, deleted = last_row(known), is_gone(known)
        # counted nowhere: a deleted review is neither completed, cancelled nor overdue (its status is kept)
        completed, cancelled = is_completed(row) and not deleted, is_cancelled(row) and not deleted
        target = target_date(row)
        # overdue ⇔ not completed, not cancelled, and COALESCE(due, planned) < the as-of local date
        overdue = not deleted and not completed and not cancelled and target is not None and target < as_of_date
        issued = issued_date(row, settings)
        planned = row.get("planned_date")
        rows[(review_id,)] = {
            "service_id": row.get("service_id"),
            "project_id": masters.service_project(row.get("service_id")),
            "planned_date": planned,
            "due_date": row.get("due_date"),
            "issued_date": issued,
            "cycle_no": row.get("cycle_no"),
            "status": row.get("status"),
            "is_completed": completed,
            "is_cancelled": cancelled,
            "is_deleted": deleted,
            "is_overdue": overdue,
            "days_overdue": (as_of_date - target).days if overdue else None,
            # planned-vs-actual days = local date of actual_issued_at - planned_date
            "planned_vs_actual_days": (issued - planned).days if issued and planned else None,
            "weight_factor": rounded(row.get("weight_factor"), 2),
        }
    return rows


# --- fact.review_event (README) ---------------------------------------------------------------------------


def _version_attributes(row: Row, source_zone: str) -> tuple:
    """What identifies the dim.review version an event produced: the attributes the rules read."""
    return (row.get("status"), row.get("planned_date"), row.get("due_date"), issued_instant(row, source_zone))


def review_events(history: History, masters: Masters) -> Table:
    """Planned, status change, completed, cancelled, reopened, rescheduled, issued and deleted events, one row
    per (review, event type, instant), the first one there, from each review's whole history. Timed at the
    version's start (when a run first saw the change), except issued and completed, at actual_issued_at (else
    the version's start).
    Values: statuses; the target date (due, else planned) as an ISO date; the issued instant as ISO UTC."""
    settings = history.settings
    zone, source_zone = settings.business_timezone, settings.source_timezone
    events: Table = {}
    for review_id, known in masters.reviews.items():

        def add(kind: str, at: datetime, version: Row, old: object, new: object) -> None:
            # the first event at a key stays: a review completed again at the same actual_issued_at (completed,
            # cancelled, report issued keeps the issue time) is one completion, the one that happened first
            events.setdefault(
                (review_id, kind, at),  # noqa: B023 (used at once, in this iteration)
                {
                    "event_date": timeline.local_date(at, zone),
                    "review_version": _version_attributes(version, source_zone),
                    "from_value": old,
                    "to_value": new,
                },
            )

        before: Row | None = None
        for version in known:
            row, at = version.row, version.valid_from
            if row is None:  # hard-deleted at the source: from the run that no longer saw it
                assert before is not None
                add("deleted", at, before, before.get("status"), before.get("status"))
                before = None
                continue
            issued_at = issued_instant(row, source_zone)
            if before is None:  # first seen: planned, and what it already is
                add("planned", at, row, None, _iso(target_date(row)))
                if is_completed(row):
                    add("completed", issued_at or at, row, None, row["status"])
                if is_cancelled(row):
                    add("cancelled", at, row, None, row["status"])
                if issued_at is not None:
                    add("issued", issued_at, row, None, iso_instant(issued_at))
                before = row
                continue
            old, new = before.get("status"), row.get("status")
            if old != new:
                add("status_change", at, row, old, new)
                if is_completed(row) and not is_completed(before):
                    add("completed", issued_at or at, row, old, new)
                if is_cancelled(row):
                    add("cancelled", at, row, old, new)
                if is_completed(before) and not is_completed(row) and not is_cancelled(row):
                    add("reopened", at, row, old, new)
            if target_date(before) != target_date(row):
                add("rescheduled", at, row, _iso(target_date(before)), _iso(target_date(row)))
            issued_before = issued_instant(before, source_zone)
            if issued_at is not None and issued_at != issued_before:
                add("issued", issued_at, row, None if issued_before is None else iso_instant(issued_before),
                    iso_instant(issued_at))  # fmt: skip
            before = row
    return events


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


# --- brg.review_issue (README) ---------------------------------------------------------------------------


def review_issues(history: History, masters: Masters) -> Table:
    """Per live review that is not cancelled: the issues of its project opened or closed within its window
    (the window_days local days ending on the review's date), one row per (review, issue, activity), at the
    first such instant in the window; the issue's project is the one it had at that instant."""
    settings = history.settings
    window = settings.review_issue_window_days
    zone = settings.business_timezone
    by_project: dict[int, list[tuple[tuple, str, datetime, date]]] = {}
    for key, activity in issues.issue_activity(history).items():
        for kind, at, project in activity:
            by_project.setdefault(project, []).append((key, kind, at, timeline.local_date(at, zone)))
    rows: Table = {}
    for review_id, known in masters.reviews.items():
        row = known[-1].row
        if row is None or is_cancelled(row):
            continue
        project = masters.service_project(row.get("service_id"))
        last = review_date(row, settings)
        if project == UNKNOWN or last is None:
            continue
        first = last - timedelta(days=window - 1)
        for key, kind, at, day in sorted(by_project.get(project, []), key=lambda e: e[2]):
            if first <= day <= last and (review_id, key, kind) not in rows:
                rows[(review_id, key, kind)] = {"event_at": at, "event_date": day, "window_days": window}
    return rows


# --- mart.review_performance (its header comment) ---------------------------------------------------------


def review_performance(history: History, masters: Masters, reviews: Table) -> Table:
    """Per (project, month of the planned date) with reviews that are not cancelled or deleted: reviews,
    completed, completed on time (issued on or before COALESCE(due, planned)), on-time rate (3 places, NULL
    with none completed), overdue, mean slippage of completed reviews (1 place); current project and client
    names."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for fact in reviews.values():
        if fact["is_cancelled"] or fact["is_deleted"] or fact["planned_date"] is None:
            continue
        groups.setdefault((fact["project_id"], fact["planned_date"].replace(day=1)), []).append(fact)
    rows: Table = {}
    for (project_id, month), facts in groups.items():
        completed = [f for f in facts if f["is_completed"]]
        on_time = [
            f for f in completed
            if f["issued_date"] is not None and f["issued_date"] <= (f["due_date"] or f["planned_date"])
        ]  # fmt: skip
        slips = [f["planned_vs_actual_days"] for f in completed if f["planned_vs_actual_days"] is not None]
        name, client = masters.project_names(project_id)
        rows[(project_id, month)] = {
            "project_name": name,
            "client_name": client,
            "reviews": len(facts),
            "completed": len(completed),
            "completed_on_time": len(on_time),
            "on_time_rate": rounded(Decimal(len(on_time)) / len(completed), 3) if completed else None,
            "overdue": sum(1 for f in facts if f["is_overdue"]),
            "avg_slippage_days": rounded(Decimal(sum(slips)) / len(slips), 1) if slips else None,
        }
    return rows


# --- the model and the warehouse ----------------------------------------------------------------------------


def expected(history: History) -> dict[str, Table]:
    masters = Masters(history)
    reviews = review_fact(history, masters)
    return {
        "fact.review": reviews,
        "fact.review_event": review_events(history, masters),
        "brg.review_issue": review_issues(history, masters),
        "mart.review_performance": review_performance(history, masters, reviews),
    }


def _date(key: int | None) -> date | None:
    if key is None or key == UNKNOWN:
        return None
    return date(key // 10000, key // 100 % 100, key % 100)


def actual(conn: sa.Connection) -> dict[str, Table]:
    return {
        "fact.review": _actual_reviews(conn),
        "fact.review_event": _actual_events(conn),
        "brg.review_issue": _actual_bridge(conn),
        "mart.review_performance": _actual_mart(conn),
    }


def _actual_reviews(conn: sa.Connection) -> Table:
    query = sa.text(
        "SELECT f.review_id, s.service_id, p.project_id, f.planned_date_key, f.due_date_key, f.issued_date_key, "
        "f.cycle_no, f.status, f.is_completed, f.is_cancelled, f.is_deleted, f.is_overdue, f.days_overdue, "
        "f.planned_vs_actual_days, f.weight_factor "
        "FROM fact.review AS f "
        "LEFT JOIN dim.service AS s ON s.service_sk = f.service_sk "
        "LEFT JOIN dim.project AS p ON p.project_sk = f.project_sk"
    )
    rows: Table = {}
    for r in conn.execute(query).mappings():
        values = {
            "service_id": r["service_id"],
            "project_id": r["project_id"],
            "planned_date": _date(r["planned_date_key"]),
            "due_date": _date(r["due_date_key"]),
            "issued_date": _date(r["issued_date_key"]),
            "cycle_no": r["cycle_no"],
            "status": r["status"],
            "is_completed": bool(r["is_completed"]),
            "is_cancelled": bool(r["is_cancelled"]),
            "is_deleted": bool(r["is_deleted"]),
            "is_overdue": bool(r["is_overdue"]),
            "days_overdue": r["days_overdue"],
            "planned_vs_actual_days": r["planned_vs_actual_days"],
            "weight_factor": r["weight_factor"],
        }
        rows[(r["review_id"],)] = values
    return rows


def _actual_events(conn: sa.Connection) -> Table:
    query = sa.text(
        "SELECT e.review_id, e.event_type, e.event_at, e.event_date_key, e.from_value, e.to_value, "
        "v.status, v.planned_date, v.due_date, v.actual_issued_at "
        "FROM fact.review_event AS e LEFT JOIN dim.review AS v ON v.review_sk = e.review_sk"
    )
    rows: Table = {}
    for r in conn.execute(query).mappings():
        rows[(r["review_id"], r["event_type"], utc_instant(r["event_at"]))] = {
            "event_date": _date(r["event_date_key"]),
            "review_version": (r["status"], r["planned_date"], r["due_date"], r["actual_issued_at"]),
            "from_value": r["from_value"],
            "to_value": r["to_value"],
        }
    return rows


def _actual_bridge(conn: sa.Connection) -> Table:
    query = sa.text(
        "SELECT b.review_id, k.source_system, k.source_project_id, k.source_issue_id, b.activity, b.event_at, "
        "b.event_date_key, b.window_days "
        "FROM brg.review_issue AS b JOIN dim.issue_key AS k ON k.issue_key = b.issue_key"
    )
    rows: Table = {}
    for r in conn.execute(query).mappings():
        issue = (r["source_system"], r["source_project_id"], r["source_issue_id"])
        rows[(r["review_id"], issue, r["activity"])] = {
            "event_at": utc_instant(r["event_at"]),
            "event_date": _date(r["event_date_key"]),
            "window_days": r["window_days"],
        }
    return rows


def _actual_mart(conn: sa.Connection) -> Table:
    query = sa.text(
        "SELECT project_id, project_name, client_name, planned_month, reviews, completed, completed_on_time, "
        "on_time_rate, overdue, avg_slippage_days FROM mart.review_performance"
    )
    rows: Table = {}
    for r in conn.execute(query).mappings():
        values = dict(r)
        key = (values.pop("project_id"), values.pop("planned_month"))
        for column in ("reviews", "completed", "completed_on_time", "overdue"):
            values[column] = int(values[column])
        rows[key] = values
    return rows
