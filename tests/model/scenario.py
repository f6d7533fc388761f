"""Random sequences of simulated days on a small source, written as data so that they can be replayed and shrunk.

A scenario is days of source changes and runs. Times are whole minutes after the scenario's start. Every
change has the instant it is stamped with (``at``: the source's change time) and the instant it is committed
(``commit``): a change committed late is stamped before rows other runs already saw, within the look-back.
A run happens at its instant (its as-of) after every change committed by then; it may be repeated at the same
as-of, fail at a step (a fault) and be retried, re-read everything (``full_refresh``) or back-fill the
snapshot from some days before its as-of date.

``generate(seed, days)`` draws a scenario; ``apply_change`` writes one change into the source. A change whose
target is gone (a shrunk scenario dropped what made it) does nothing, so any subset of a scenario replays.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

SOURCE_ZONE = ZoneInfo("Australia/Sydney")
LATEST_START = datetime(2026, 10, 25, tzinfo=UTC)
EARLIEST_START = datetime(2025, 6, 1, tzinfo=UTC)
MAX_LATE_MINUTES = 20 * 60  # inside the default 24-hour look-back

STATUSES = {  # raw statuses a tracker sends; the spellings vary in case and spaces as the trackers' do
    "ACC": ("open", "pending", "in_review", "closed", "void", "Closed", " open "),
    "Revizto": ("Open", "In progress", "Ready to check", "Solved", "solved", " SOLVED ", "Closed"),
}
UNMAPPED_STATUS = "frobnicated"
CLOSED_STATUSES = {"closed", "void", "solved"}  # lower(trim()) of the base map's closed ones
PRIORITIES = {
    "ACC": ("Blocker", "Critical", "Major", "Minor", "Trivial", "none", None, " major "),
    "Revizto": ("L1 - Critical", "L2 - High", "L3 - Medium", "L4 - Low", "n/a", None),
}
TRACKER_PROJECTS = {  # tracker -> (tracker project id, PM project id, tracker's project name)
    "ACC": (("a-1", 1, "Harbour Tower"), ("a-2", None, "Riverside School"), ("a-3", None, "Nowhere Depot")),
    "Revizto": (("101", 3, "Metro Station"), ("102", None, "Coastal Clinic")),
}


@dataclass(frozen=True)
class Change:
    """One source change: stamped ``at``, committed ``commit`` (minutes after the start), of ``kind``."""

    at: int
    commit: int
    kind: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunPlan:
    """One run at minute ``at``: ``fault`` names the step that fails first (then the run is retried)."""

    at: int
    repeat: bool = False
    fault: str | None = None
    full_refresh: bool = False
    backfill_days: int | None = None


@dataclass(frozen=True)
class Day:
    number: int
    changes: tuple[Change, ...] = ()
    runs: tuple[RunPlan, ...] = ()


@dataclass(frozen=True)
class Scenario:
    seed: int
    start: datetime  # aware UTC; the base world exists at it
    days: tuple[Day, ...]

    def instant(self, minutes: int) -> datetime:
        return self.start + timedelta(minutes=minutes)


# --- the base world -------------------------------------------------------------------------------------


def create_source(conn: sa.Connection, start: datetime) -> None:
    """The small base world at ``start``: 3 projects (two share a name), services, reviews, categories,
    the trackers' maps and a dozen issues, all created in the days before it."""
    from flows import demo_source

    demo_source._run_file(conn, "schema")
    before = (start - timedelta(days=20)).replace(tzinfo=None)
    run = conn.execute
    run(sa.text("INSERT INTO dbo.clients (client_id, client_name) VALUES (1, 'Harbour Council'), (2, 'Metro Rail')"))
    run(sa.text("INSERT INTO dbo.project_types (type_id, type_name) VALUES (1, 'Civic'), (2, 'Transport')"))
    run(
        sa.text(
            "INSERT INTO dbo.users (user_id, name, email, created_at) VALUES (1, 'Ann Lee', 'ann@x.example', :t),"
            " (2, 'Bo Chen', 'bo@x.example', :t), (3, 'Cy Ode', 'cy@x.example', :t)"
        ),
        {"t": before},
    )
    for project_id, name, client, ptype in (
        (1, "Harbour Tower", 1, 1),
        (2, "Riverside School", 1, 1),
        (3, "Metro Station", 2, 2),
        (4, "Coastal Clinic", 2, 1),
        (5, "Coastal Clinic", 1, 2),
    ):
        run(
            sa.text(
                "INSERT INTO dbo.projects (project_id, project_name, client_id, type_id, status, "
                "contract_value, agreed_fee, created_at) VALUES (:p, :n, :c, :t, 'active', 1000000, 90000, :at)"
            ),
            {"p": project_id, "n": name, "c": client, "t": ptype, "at": before},
        )
    for service_id in range(1, 9):
        _insert_service(
            conn,
            service_id,
            project_id=1 + (service_id - 1) % 4,
            created=before,
            unit_type="review" if service_id % 2 else "lump_sum",
        )
    review_id = 0
    for service_id in (1, 3, 5, 7):
        for cycle in (1, 2, 3):
            review_id += 1
            planned = (start + timedelta(days=7 * cycle - 10)).date()
            _insert_review(
                conn,
                review_id,
                service_id,
                cycle,
                planned,
                status="completed" if cycle == 1 else "planned",
                issued=(start - timedelta(days=2)) if cycle == 1 else None,
            )
    for category_id in (1, 2, 3):
        run(
            sa.text(
                'INSERT INTO dbo."IssueCategories" (category_id, category_name, category_level, created_at, '
                "updated_at) VALUES (:c, :n, 1, :t, :t)"
            ),
            {"c": category_id, "n": f"Discipline {category_id}", "t": before},
        )
    for category_id in range(11, 17):
        run(
            sa.text(
                'INSERT INTO dbo."IssueCategories" (category_id, category_name, parent_category_id, '
                "category_level, created_at, updated_at) VALUES (:c, 'Coordination', :p, 2, :t, :t)"
            ),
            {"c": category_id, "p": 1 + (category_id - 11) // 2, "t": before},
        )
    run(
        sa.text("""INSERT INTO dbo.issue_status_map (source_system, raw_status, normalized_status, is_closed) VALUES
        ('ACC', 'open', 'Open', FALSE), ('ACC', 'pending', 'In Progress', FALSE),
        ('ACC', 'in_review', 'In Review', FALSE), ('ACC', 'closed', 'Closed', TRUE), ('ACC', 'void', 'Void', TRUE),
        ('Revizto', 'Open', 'Open', FALSE), ('Revizto', 'In progress', 'In Progress', FALSE),
        ('Revizto', 'Ready to check', 'In Review', FALSE), ('Revizto', 'Solved', 'Resolved', TRUE),
        ('Revizto', 'Closed', 'Closed', TRUE)""")
    )
    run(
        sa.text("""INSERT INTO dbo.issue_priority_map (source_system, raw_priority, normalized_priority) VALUES
        ('ACC', 'Blocker', 'Critical'), ('ACC', 'Critical', 'Critical'), ('ACC', 'Major', 'High'),
        ('Revizto', 'L1 - Critical', 'Critical'), ('Revizto', 'L2 - High', 'High')""")
    )
    for n in range(12):
        tracker = "ACC" if n % 3 else "Revizto"
        tproj = TRACKER_PROJECTS[tracker][n % len(TRACKER_PROJECTS[tracker])][0]
        created = start - timedelta(days=12 - n, hours=n)
        _insert_issue(
            conn,
            tracker,
            tproj,
            str(1000 + n),
            STATUSES[tracker][n % 3],
            PRIORITIES[tracker][n % 4],
            created,
            number=n + 1,
        )


def _local(instant: datetime) -> datetime:
    """The source server's offset-less local wall time of an instant (Revizto, ProcessedIssues, reviews)."""
    return instant.astimezone(SOURCE_ZONE).replace(tzinfo=None)


def _insert_service(conn: sa.Connection, service_id: int, project_id: int, created: datetime, unit_type: str) -> None:
    conn.execute(
        sa.text("""INSERT INTO dbo."ProjectServices" (service_id, project_id, phase, service_code,
            service_name, unit_type, unit_qty, unit_rate, agreed_fee, status, progress_pct, claimed_to_date,
            assigned_user_id, created_at)
        VALUES (:s, :p, 'Design', :code, :name, :u, 3, 1000, :fee, 'in_progress', 0, 0, 1, :c)"""),
        {
            "s": service_id,
            "p": project_id,
            "code": f"S{service_id}",
            "name": f"Service {service_id}",
            "u": unit_type,
            "fee": Decimal(10000 + 1500 * service_id),
            "c": created,
        },
    )


def _insert_review(
    conn: sa.Connection,
    review_id: int,
    service_id: int,
    cycle: int,
    planned: date,
    *,
    status: str = "planned",
    issued: datetime | None = None,
) -> None:
    conn.execute(
        sa.text("""INSERT INTO dbo."ServiceReviews" (review_id, service_id, cycle_no, planned_date, due_date,
            status, weight_factor, actual_issued_at, assigned_user_id)
        SELECT :r, :s, :c, :planned, :due, :status, 1, :issued, 2
        WHERE EXISTS (SELECT 1 FROM dbo."ProjectServices" WHERE service_id = :s)"""),
        {
            "r": review_id,
            "s": service_id,
            "c": cycle,
            "planned": planned,
            "due": planned + timedelta(days=3) if cycle % 2 else None,
            "status": status,
            "issued": _local(issued) if issued else None,
        },
    )


_TRACKER = {
    "ACC": dict(
        table="dbo.acc_issues",
        project="acc_project_id",
        issue="acc_issue_id",
        assignee="assigned_to",
        author="created_by",
        created="created_at",
        closed="closed_at",
        updated="updated_at",
        deleted="deleted_at",
    ),
    "Revizto": dict(
        table="dbo.revizto_issues",
        project="revizto_project_id",
        issue="revizto_issue_id",
        assignee="assignee",
        author="reporter",
        created="created_local",
        closed="closed_local",
        updated="updated_local",
        deleted="deleted_local",
    ),
}


def _tracker_time(tracker: str, instant: datetime | None) -> datetime | None:
    if instant is None:
        return None
    return instant.replace(tzinfo=None) if tracker == "ACC" else _local(instant)


def _key_params(tracker: str, tproj: str, issue: str) -> dict[str, Any]:
    if tracker == "Revizto":
        return {"tp": int(tproj), "i": int(issue)}
    return {"tp": tproj, "i": issue}


def _insert_issue(
    conn: sa.Connection,
    tracker: str,
    tproj: str,
    issue: str,
    status: str,
    priority: str | None,
    created: datetime,
    number: int,
) -> None:
    t = _TRACKER[tracker]
    pm_project, name = next((pm, name) for tp, pm, name in TRACKER_PROJECTS[tracker] if tp == tproj)
    closed = created if status.strip().lower() in CLOSED_STATUSES else None
    conn.execute(
        sa.text(f"""INSERT INTO {t["table"]} ({t["project"]}, {t["issue"]}, issue_number, pm_project_id,
            project_name, title, status, priority, {t["assignee"]}, {t["author"]}, {t["created"]}, {t["closed"]},
            {t["updated"]})
        VALUES (:tp, :i, :n, :pm, :name, :title, :status, :priority, 'Ann', 'Bo', :created, :closed, :created)"""),
        {
            **_key_params(tracker, tproj, issue),
            "n": number,
            "pm": pm_project,
            "name": name,
            "title": f"Issue {issue}",
            "status": status,
            "priority": priority,
            "created": _tracker_time(tracker, created),
            "closed": _tracker_time(tracker, closed),
        },
    )


# --- changes ----------------------------------------------------------------------------------------------


def apply_change(conn: sa.Connection, scenario: Scenario, change: Change) -> None:
    """Write one change into the source, stamped at its ``at`` (a change whose target is gone does nothing)."""
    _APPLY[change.kind](conn, scenario.instant(change.at), **change.args)


def _issue_update(
    conn: sa.Connection, stamp: datetime, tracker: str, tproj: str, issue: str, sets: str, **params: Any
) -> None:
    """Update one live issue; its change time moves to the stamp (never backwards: a later stamp already
    there stays later by a second)."""
    t = _TRACKER[tracker]
    conn.execute(
        sa.text(f"""UPDATE {t["table"]} SET {sets},
            {t["updated"]} = greatest(CAST(:stamp AS timestamp), {t["updated"]} + interval '1 second')
        WHERE {t["project"]} = :tp AND {t["issue"]} = :i AND NOT is_deleted"""),
        {**_key_params(tracker, tproj, issue), "stamp": _tracker_time(tracker, stamp), **params},
    )


def _new_issue(
    conn: sa.Connection, stamp: datetime, tracker: str, tproj: str, issue: str, status: str, priority: str | None
) -> None:
    _insert_issue(conn, tracker, tproj, issue, status, priority, stamp, number=int(issue) % 10_000)


def _set_status(conn: sa.Connection, stamp: datetime, tracker: str, tproj: str, issue: str, status: str) -> None:
    closed = _TRACKER[tracker]["closed"]
    is_closed = status.strip().lower() in CLOSED_STATUSES
    _issue_update(
        conn,
        stamp,
        tracker,
        tproj,
        issue,
        f"status = :status, {closed} = CASE WHEN :closing THEN coalesce({closed}, :at) END",
        status=status,
        closing=is_closed,
        at=_tracker_time(tracker, stamp),
    )


def _set_priority(
    conn: sa.Connection, stamp: datetime, tracker: str, tproj: str, issue: str, priority: str | None
) -> None:
    _issue_update(conn, stamp, tracker, tproj, issue, "priority = :priority", priority=priority)


def _reassign(conn: sa.Connection, stamp: datetime, tracker: str, tproj: str, issue: str, assignee: str) -> None:
    _issue_update(conn, stamp, tracker, tproj, issue, f"{_TRACKER[tracker]['assignee']} = :a", a=assignee)


def _flag_deleted(conn: sa.Connection, stamp: datetime, tracker: str, tproj: str, issue: str) -> None:
    deleted = _TRACKER[tracker]["deleted"]
    _issue_update(
        conn, stamp, tracker, tproj, issue, f"is_deleted = TRUE, {deleted} = :at", at=_tracker_time(tracker, stamp)
    )


def _remove(conn: sa.Connection, stamp: datetime, tracker: str, tproj: str, issue: str) -> None:
    """The tracker removes the issue (Revizto never flags deletions)."""
    t = _TRACKER[tracker]
    conn.execute(
        sa.text(f"DELETE FROM {t['table']} WHERE {t['project']} = :tp AND {t['issue']} = :i"),
        _key_params(tracker, tproj, issue),
    )


def _move(conn: sa.Connection, stamp: datetime, tracker: str, tproj: str, issue: str, to: str) -> None:
    """The issue moves to another tracker project of its tracker: a new identity, the same issue otherwise."""
    t = _TRACKER[tracker]
    pm_project, name = next((pm, name) for tp, pm, name in TRACKER_PROJECTS[tracker] if tp == to)
    conn.execute(
        sa.text(f"""UPDATE {t["table"]} SET {t["project"]} = :to, pm_project_id = :pm,
            project_name = :name,
            {t["updated"]} = greatest(CAST(:stamp AS timestamp), {t["updated"]} + interval '1 second')
        WHERE {t["project"]} = :tp AND {t["issue"]} = :i AND NOT is_deleted
            AND NOT EXISTS (SELECT 1 FROM {t["table"]} WHERE {t["project"]} = :to AND {t["issue"]} = :i)"""),
        {
            **_key_params(tracker, tproj, issue),
            "to": _key_params(tracker, to, issue)["tp"],
            "pm": pm_project,
            "name": name,
            "stamp": _tracker_time(tracker, stamp),
        },
    )


def _analyse(
    conn: sa.Connection,
    stamp: datetime,
    source: str,
    issue: str,
    urgency: str,
    complexity: str,
    sentiment: str,
    discipline: int | None,
) -> None:
    """The analytics job (re-)processes an issue of the view (any of its tracker projects)."""
    conn.execute(
        sa.text("""INSERT INTO dbo."ProcessedIssues" (source, source_issue_id, urgency_score,
            complexity_score, sentiment_score, categorization_confidence, discipline_category_id,
            primary_category_id, secondary_category_id, processed_at, processing_version)
        SELECT CAST(:source AS varchar(20)), CAST(:issue AS varchar(64)), :u, :c, :s, 0.9, :d, :p, NULL, :at, 1
        WHERE EXISTS (SELECT 1 FROM dbo."vw_ProjectManagement_AllIssues"
            WHERE source = CAST(:source AS varchar(20)) AND source_issue_id = CAST(:issue AS varchar(64)))
        ON CONFLICT (source, source_issue_id) DO UPDATE SET urgency_score = EXCLUDED.urgency_score,
            complexity_score = EXCLUDED.complexity_score, sentiment_score = EXCLUDED.sentiment_score,
            discipline_category_id = EXCLUDED.discipline_category_id,
            primary_category_id = EXCLUDED.primary_category_id,
            processed_at = greatest(EXCLUDED.processed_at, "ProcessedIssues".processed_at + interval '1 second'),
            processing_version = "ProcessedIssues".processing_version + 1"""),
        {
            "source": source,
            "issue": issue,
            "u": Decimal(urgency),
            "c": Decimal(complexity),
            "s": Decimal(sentiment),
            "d": discipline,
            "p": None if discipline is None else 9 + 2 * discipline,
            "at": _local(stamp),
        },
    )


def _map_status(conn: sa.Connection, stamp: datetime, source: str, raw: str, normalized: str, closed: bool) -> None:
    conn.execute(
        sa.text("""INSERT INTO dbo.issue_status_map VALUES (:s, :r, :n, :c)
        ON CONFLICT (source_system, raw_status) DO UPDATE SET normalized_status = :n, is_closed = :c"""),
        {"s": source, "r": raw, "n": normalized, "c": closed},
    )


def _map_priority(conn: sa.Connection, stamp: datetime, source: str, raw: str, normalized: str | None) -> None:
    conn.execute(
        sa.text("""INSERT INTO dbo.issue_priority_map VALUES (:s, :r, :n)
        ON CONFLICT (source_system, raw_priority) DO UPDATE SET normalized_priority = :n"""),
        {"s": source, "r": raw, "n": normalized},
    )


def _rename_project(conn: sa.Connection, stamp: datetime, project: int, name: str, touch: bool) -> None:
    conn.execute(
        sa.text(
            "UPDATE dbo.projects SET project_name = :n, "
            "updated_at = CASE WHEN :touch THEN CAST(:at AS timestamp) ELSE updated_at END WHERE project_id = :p"
        ),
        {"n": name, "touch": touch, "at": stamp.replace(tzinfo=None), "p": project},
    )


def _new_project(conn: sa.Connection, stamp: datetime, project: int, service: int) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO dbo.projects (project_id, project_name, client_id, type_id, status, created_at) "
            "VALUES (:p, :n, 1, 2, 'active', :at) ON CONFLICT DO NOTHING"
        ),
        {"p": project, "n": f"Project {project}", "at": stamp.replace(tzinfo=None)},
    )
    if not conn.execute(sa.text('SELECT 1 FROM dbo."ProjectServices" WHERE service_id = :s'), {"s": service}).first():
        _insert_service(conn, service, project, stamp.replace(tzinfo=None), "lump_sum")


def _progress(conn: sa.Connection, stamp: datetime, service: int, progress: str, claimed: str, status: str) -> None:
    """Progress (lump-sum services; the trigger owns review-based ones), claims and status, without updated_at."""
    conn.execute(
        sa.text("""UPDATE dbo."ProjectServices" SET claimed_to_date = :c, status = :st,
            progress_pct = CASE WHEN unit_type IN ('review', 'audit') THEN progress_pct ELSE :p END
        WHERE service_id = :s"""),
        {"c": Decimal(claimed), "st": status, "p": Decimal(progress), "s": service},
    )


def _fee(conn: sa.Connection, stamp: datetime, service: int, fee: str) -> None:
    conn.execute(
        sa.text('UPDATE dbo."ProjectServices" SET agreed_fee = :f WHERE service_id = :s'),
        {"f": Decimal(fee), "s": service},
    )


def _review_status(conn: sa.Connection, stamp: datetime, review: int, status: str) -> None:
    """A review moves on; issuing it (completed, report issued) records the local issue time."""
    issued = status in ("completed", "report_issued")
    conn.execute(
        sa.text("""UPDATE dbo."ServiceReviews" SET status = :st,
            actual_issued_at = CASE WHEN :issued THEN coalesce(actual_issued_at, :at)
                WHEN :reset THEN NULL ELSE actual_issued_at END
        WHERE review_id = :r"""),
        {
            "st": status,
            "issued": issued,
            "reset": status in ("planned", "in_progress"),
            "at": _local(stamp),
            "r": review,
        },
    )


def _reschedule(conn: sa.Connection, stamp: datetime, review: int, days: int) -> None:
    conn.execute(
        sa.text("""UPDATE dbo."ServiceReviews"
        SET due_date = coalesce(due_date, planned_date) + :d WHERE review_id = :r"""),
        {"d": days, "r": review},
    )


def _delete_review(conn: sa.Connection, stamp: datetime, review: int) -> None:
    conn.execute(sa.text('DELETE FROM dbo."ServiceReviews" WHERE review_id = :r'), {"r": review})


def _new_review(conn: sa.Connection, stamp: datetime, review: int, service: int, planned_days: int) -> None:
    if not conn.execute(sa.text('SELECT 1 FROM dbo."ServiceReviews" WHERE review_id = :r'), {"r": review}).first():
        _insert_review(
            conn, review, service, cycle=review % 5 + 1, planned=(stamp + timedelta(days=planned_days)).date()
        )


def _rename_category(conn: sa.Connection, stamp: datetime, category: int, name: str) -> None:
    conn.execute(
        sa.text(
            'UPDATE dbo."IssueCategories" SET category_name = :n, '
            "updated_at = greatest(CAST(:at AS timestamp), updated_at + interval '1 second') "
            "WHERE category_id = :c"
        ),
        {"n": name, "at": stamp.replace(tzinfo=None), "c": category},
    )


_APPLY = {
    "new_issue": _new_issue,
    "set_status": _set_status,
    "set_priority": _set_priority,
    "reassign": _reassign,
    "flag_deleted": _flag_deleted,
    "remove": _remove,
    "move": _move,
    "analyse": _analyse,
    "map_status": _map_status,
    "map_priority": _map_priority,
    "rename_project": _rename_project,
    "new_project": _new_project,
    "progress": _progress,
    "fee": _fee,
    "review_status": _review_status,
    "reschedule": _reschedule,
    "delete_review": _delete_review,
    "new_review": _new_review,
    "rename_category": _rename_category,
}


# --- drawing a scenario -----------------------------------------------------------------------------------


@dataclass
class _World:
    """What the generator believes exists, to draw sensible changes (replay never relies on it)."""

    issues: dict[tuple[str, str, str], bool] = field(default_factory=dict)  # live key -> closed
    next_issue: int = 2000
    next_project: int = 6
    next_service: int = 9
    next_review: int = 13
    reviews: set[int] = field(default_factory=lambda: set(range(1, 13)))


def _base_issues() -> dict[tuple[str, str, str], bool]:
    found = {}
    for n in range(12):
        tracker = "ACC" if n % 3 else "Revizto"
        tproj = TRACKER_PROJECTS[tracker][n % len(TRACKER_PROJECTS[tracker])][0]
        found[(tracker, tproj, str(1000 + n))] = STATUSES[tracker][n % 3].strip().lower() in CLOSED_STATUSES
    return found


def _draw_change(rng: random.Random, world: _World) -> tuple[str, dict[str, Any]]:
    kinds = (
        ["new_issue"] * 4
        + ["set_status"] * 6
        + ["set_priority"] * 2
        + [
            "reassign",
            "flag_deleted",
            "remove",
            "move",
            "map_status",
            "map_priority",
            "rename_project",
            "new_project",
            "fee",
            "reschedule",
            "delete_review",
            "new_review",
            "rename_category",
        ]
        + ["analyse"] * 4
        + ["progress"] * 3
        + ["review_status"] * 3
    )
    kind = rng.choice(kinds)
    live = sorted(world.issues)
    if kind in ("set_status", "set_priority", "reassign", "flag_deleted", "remove", "move", "analyse") and not live:
        kind = "new_issue"
    if kind == "new_issue":
        tracker = rng.choice(("ACC", "Revizto"))
        tproj = rng.choice(TRACKER_PROJECTS[tracker])[0]
        world.next_issue += 1
        status = rng.choice(STATUSES[tracker] + ((UNMAPPED_STATUS,) if rng.random() < 0.1 else ()))
        world.issues[(tracker, tproj, str(world.next_issue))] = status.strip().lower() in CLOSED_STATUSES
        return kind, dict(
            tracker=tracker,
            tproj=tproj,
            issue=str(world.next_issue),
            status=status,
            priority=rng.choice(PRIORITIES[tracker]),
        )
    if kind in ("set_status", "set_priority", "reassign", "flag_deleted", "remove", "move", "analyse"):
        tracker, tproj, issue = rng.choice(live)
        target = dict(tracker=tracker, tproj=tproj, issue=issue)
        if kind == "set_status":
            status = rng.choice(STATUSES[tracker] + ((UNMAPPED_STATUS,) if rng.random() < 0.05 else ()))
            world.issues[(tracker, tproj, issue)] = status.strip().lower() in CLOSED_STATUSES
            return kind, {**target, "status": status}
        if kind == "set_priority":
            return kind, {**target, "priority": rng.choice(PRIORITIES[tracker])}
        if kind == "reassign":
            return kind, {**target, "assignee": rng.choice(("Ann", "Bo", "Cy", "Dee"))}
        if kind == "flag_deleted" or kind == "remove":
            kind = "flag_deleted" if tracker == "ACC" else "remove"  # Revizto removes, ACC flags (the contract)
            del world.issues[(tracker, tproj, issue)]
            return kind, target
        if kind == "move":
            others = [tp for tp, _, _ in TRACKER_PROJECTS[tracker] if tp != tproj]
            to = rng.choice(others)
            closed = world.issues.pop((tracker, tproj, issue))
            world.issues[(tracker, to, issue)] = closed
            return kind, {**target, "to": to}
        return kind, dict(
            source=tracker,
            issue=issue,
            urgency=f"{rng.randint(0, 10000) / 10000:.4f}",
            complexity=f"{rng.randint(0, 10000) / 10000:.4f}",
            sentiment=f"{rng.randint(-10000, 10000) / 10000:.4f}",
            discipline=rng.choice((1, 2, 3, None)),
        )
    if kind == "map_status":
        source = rng.choice(("ACC", "Revizto"))
        raw = rng.choice((UNMAPPED_STATUS, "void" if source == "ACC" else "Ready to check"))
        closed = rng.random() < 0.5
        return kind, dict(source=source, raw=raw, normalized="Closed" if closed else "Open", closed=closed)
    if kind == "map_priority":
        source = rng.choice(("ACC", "Revizto"))
        raw = rng.choice(("Minor", "none") if source == "ACC" else ("L3 - Medium", "n/a"))
        return kind, dict(source=source, raw=raw, normalized=rng.choice(("High", "Low", None)))
    if kind == "rename_project":
        project = rng.randint(1, 5)
        return kind, dict(
            project=project,
            name=rng.choice(("Harbour Tower", "Coastal Clinic", f"Renamed {project}")),
            touch=rng.random() < 0.5,
        )
    if kind == "new_project":
        world.next_project += 1
        world.next_service += 1
        return kind, dict(project=world.next_project, service=world.next_service)
    if kind == "progress":
        return kind, dict(
            service=rng.randint(1, world.next_service),
            progress=f"{rng.randint(0, 100)}.00",
            claimed=f"{rng.randint(0, 30000)}.00",
            status=rng.choice(("planned", "in_progress", "in_progress", "completed", "on_hold")),
        )
    if kind == "fee":
        return kind, dict(service=rng.randint(1, world.next_service), fee=f"{rng.randint(5000, 40000)}.00")
    if kind in ("review_status", "reschedule", "delete_review") and not world.reviews:
        kind = "new_review"
    if kind == "review_status":
        return kind, dict(
            review=rng.choice(sorted(world.reviews)),
            status=rng.choice(("in_progress", "completed", "report_issued", "closed", "cancelled", "planned")),
        )
    if kind == "reschedule":
        return kind, dict(review=rng.choice(sorted(world.reviews)), days=rng.choice((-5, -2, 3, 7, 20)))
    if kind == "delete_review":
        review = rng.choice(sorted(world.reviews))
        world.reviews.discard(review)
        return kind, dict(review=review)
    if kind == "new_review":
        world.next_review += 1
        world.reviews.add(world.next_review)
        return kind, dict(review=world.next_review, service=rng.choice((1, 3, 5, 7)), planned_days=rng.randint(-10, 20))
    return "rename_category", dict(
        category=rng.choice((1, 2, 11, 14)), name=rng.choice(("Civil", "Structural", "Clash"))
    )


def generate(seed: int, days: int, fault_steps: tuple[str, ...]) -> Scenario:
    """A random scenario of ``days`` days; ``fault_steps`` are the run steps a fault may hit."""
    rng = random.Random(seed)
    span = (LATEST_START - EARLIEST_START).days
    start = EARLIEST_START + timedelta(days=rng.randrange(span), minutes=rng.randrange(24 * 60))
    world = _World(issues=_base_issues())
    drawn = []
    for number in range(days):
        day_minute = number * 24 * 60
        roll = rng.random()
        run_count = 0 if roll < 0.3 else (2 if roll > 0.9 else 1)  # days skipped, days run twice
        if number == 0:
            run_count = max(run_count, 1)  # the first run is the initial load
        runs = tuple(
            RunPlan(
                at=day_minute + minute,
                repeat=rng.random() < 0.1,
                fault=rng.choice(fault_steps) if fault_steps and rng.random() < 0.12 else None,
                full_refresh=rng.random() < 0.05,
                backfill_days=rng.randint(1, 6) if number and rng.random() < 0.06 else None,
            )
            for minute in sorted(rng.sample(range(1, 24 * 60), run_count))
        )
        changes = []
        for _ in range(rng.randint(1, 7) if number else 0):
            at = day_minute + rng.randrange(24 * 60)
            late = rng.random() < 0.15
            commit = at + (rng.randint(30, MAX_LATE_MINUTES) if late else 0)
            kind, args = _draw_change(rng, world)
            changes.append(Change(at=at, commit=commit, kind=kind, args=args))
        drawn.append(Day(number=number, changes=tuple(sorted(changes, key=lambda c: c.commit)), runs=runs))
    return Scenario(seed=seed, start=start, days=tuple(drawn))


def as_python(scenario: Scenario) -> str:
    """The scenario as Python source, for a regression test."""
    start = repr(scenario.start).replace("datetime.timezone.utc", "datetime.UTC")
    lines = [f"Scenario(seed={scenario.seed}, start={start}, days=("]
    for day in scenario.days:
        lines.append(f"    Day(number={day.number}, changes=(")
        lines.extend(f"        {change!r}," for change in day.changes)
        lines.append(f"    ), runs=({''.join(f'{run!r}, ' for run in day.runs)})),")
    lines.append("))")
    return "\n".join(lines)
