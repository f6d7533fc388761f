"""Issues: the daily snapshot, the issue events, the issue-category bridge and the issue marts, as the rules say.

Written from shared/docs/business-rules.md (Time, Issues, Facts, Dimensions) and the README's definitions of
``fact.issue_daily``, ``fact.issue_event``, ``brg.issue_category`` and the issue marts (their header
comments), never from the procedures. The issues view's change time is ``source_updated_at`` (ACC in UTC,
Revizto in offset-less source-local time), ProcessedIssues' is ``processed_at`` (source-local); master data
(projects, clients, project types, the status and priority maps) has none, so a state of it starts at the
as-of of the first run that saw it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa

from model import timeline
from model.history import ISSUES_VIEW, History, Row, Run
from model.timeline import Version, Versions, rounded

OBJECTS: tuple[str, ...] = (
    "fact.issue_daily",
    "fact.issue_event",
    "brg.issue_category",
    "mart.issue_backlog_age",
    "mart.issue_trend",
    "mart.issue_urgency",
)

UNKNOWN = -1
UNRESOLVED = "Unresolved"  # the unknown project's name in the issue marts
UNASSIGNED = "Unassigned"  # no discipline in mart.issue_trend
NO_PRIORITY = "None"  # no priority in mart.issue_trend
HIGH_PRIORITY = {"Critical", "High"}
HIGH_URGENCY = Decimal("0.8")  # README, Business rules: high urgency <=> urgency_score >= 0.8
TITLE_LENGTH = 500  # dim.issue.title; longer text is quarantined
SCORES = ("urgency_score", "complexity_score", "sentiment_score", "categorization_confidence")
CATEGORY_ROLES = {"discipline": "discipline_category_id", "primary": "primary_category_id",
                  "secondary": "secondary_category_id"}  # fmt: skip
# business-rules.md, Issues: the priority fallback when the map has no row for a spelling
FALLBACK_PRIORITY = {
    "blocker": "Critical", "critical": "Critical", "l1": "Critical",
    "major": "High", "l2": "High",
    "minor": "Medium", "l3": "Medium",
    "trivial": "Low", "l4": "Low",
    "none": None, "n/a": None, "unknown": None,
}  # fmt: skip
AGE_BUCKETS = ((7, "0-7", 1), (30, "8-30", 2), (90, "31-90", 3))

Table = dict[tuple, dict[str, object]]
IssueKey = tuple[str, str, str]  # (source_system, source_project_id, source_issue_id)


# --- values -----------------------------------------------------------------------------------------------


def spelling(raw: object) -> str | None:
    """Raw statuses and priorities meet the maps trimmed and case-insensitively (business-rules.md, Issues)."""
    return None if raw is None else str(raw).strip().lower()


def fallback_priority(raw: object) -> str | None:
    """The rule's fallback: a spelling's leading word (``L1 - Critical`` is ``L1``) names the priority;
    anything else has none."""
    word = spelling(raw)
    if not word:
        return None
    if word in FALLBACK_PRIORITY:
        return FALLBACK_PRIORITY[word]
    leading = re.match(r"[^\s\-:]+", word)
    return FALLBACK_PRIORITY.get(leading.group(0)) if leading else None


# --- the source as the warehouse loaded it ----------------------------------------------------------------


def issue_key(row: Row) -> IssueKey:
    return (row["source"], row["source_project_id"], row["source_issue_id"])  # type: ignore[return-value]


def issue_times(row: Row, zone: str) -> dict[str, datetime | None]:
    """created / closed / deleted / changed as instants: ACC sends UTC, Revizto source-local wall times, with
    (created, closed) an ordered pair (business-rules.md, Time)."""
    if row["source"] == "ACC":
        return {c: timeline.utc(row[c]) for c in ("created_at", "closed_at", "deleted_at", "source_updated_at")}  # type: ignore[arg-type]
    created, closed = timeline.to_utc_pair(row["created_at"], row["closed_at"], zone)  # type: ignore[arg-type]
    return {"created_at": created, "closed_at": closed,
            "deleted_at": timeline.to_utc(row["deleted_at"], zone),  # type: ignore[arg-type]
            "source_updated_at": timeline.to_utc(row["source_updated_at"], zone)}  # type: ignore[arg-type]  # fmt: skip


def _same_state(before: Row, after: Row) -> bool:
    """The same state of an issue: every column but its change time equal (a tracker that sends an issue again
    with a new source_updated_at and nothing else changed gives the warehouse no new version)."""
    return {**before, "source_updated_at": None} == {**after, "source_updated_at": None}


def _rejected_issue(row: Row, run: Run, zone: str) -> bool:
    """README, Rejected rows: a NULL business key, a title longer than its column, an event instant later
    than the source's clock (the run's as-of), a closing before its creation (as instants)."""
    if any(row.get(c) is None for c in ("source", "source_project_id", "source_issue_id")):
        return True
    if row.get("title") is not None and len(row["title"]) > TITLE_LENGTH:  # type: ignore[arg-type]
        return True
    times = issue_times(row, zone)
    if any(times[c] is not None and times[c] > run.as_of for c in ("created_at", "closed_at", "deleted_at")):  # type: ignore[operator]
        return True
    created, closed = times["created_at"], times["closed_at"]
    return created is not None and closed is not None and closed < created


def loaded_history(history: History) -> History:
    """The runs as the warehouse loaded them: a quarantined issue row is no change (its key keeps the state
    loaded before; one never loaded stays unknown)."""
    zone = history.settings.source_timezone
    return timeline.loaded_rows(history, ISSUES_VIEW, issue_key, lambda row, run: _rejected_issue(row, run, zone))


def state_at(known: list[Version] | None, instant: datetime, *, before: bool) -> Row | None:
    """The row in effect at ``instant`` (strictly before it with ``before``); None before its first version
    or once it is gone. (timeline.in_effect gives the first version before it begins.)"""
    if not known:
        return None
    first = known[0].valid_from
    if first > instant or (before and first == instant):
        return None
    return timeline.in_effect(known, instant, before=before).row


def last_row(known: list[Version] | None, instant: datetime | None = None, *, before: bool = False) -> Row | None:
    """The attributes of the version in effect at ``instant`` (the current one without it; the earliest
    before the first): a version deleted at the source keeps its predecessor's attributes."""
    if not known:
        return None
    chosen = known[-1] if instant is None else timeline.in_effect(known, instant, before=before)
    for version in reversed(known[: known.index(chosen) + 1]):
        if version.row is not None:
            return version.row
    return None


class World:
    """Every version the runs loaded, and what the snapshot needs from them."""

    def __init__(self, history: History) -> None:
        self.history = loaded_history(history)
        self.zone = history.settings.business_timezone
        self.source_zone = history.settings.source_timezone
        self.as_of = history.runs[-1].as_of
        self.as_of_date = timeline.local_date(self.as_of, self.zone)
        self.first_date = timeline.first_snapshot_date(history)
        self.run_at = {run.as_of: run for run in self.history.runs}
        h = self.history
        self.issues: dict[IssueKey, list[Version]] = timeline.versions(h, ISSUES_VIEW, issue_key, self._issue_changed)  # type: ignore[assignment]
        self.analytics = timeline.versions(
            h, "ProcessedIssues", lambda r: (r["source"], r["source_issue_id"]),
            lambda r: timeline.to_utc(r["processed_at"], self.source_zone),  # type: ignore[arg-type]
        )  # fmt: skip
        self.projects = timeline.versions(h, "projects", lambda r: r["project_id"])
        self.clients = timeline.versions(h, "clients", lambda r: r["client_id"])
        self.types = timeline.versions(h, "project_types", lambda r: r["type_id"])
        self.categories = timeline.versions(
            h,
            "IssueCategories",
            lambda r: r["category_id"],
            lambda r: timeline.utc(r["updated_at"]),  # type: ignore[arg-type]
        )
        self.status_map = timeline.versions(h, "issue_status_map", lambda r: (r["source_system"], r["raw_status"]))
        self.priority_map = timeline.versions(
            h, "issue_priority_map", lambda r: (r["source_system"], r["raw_priority"])
        )
        self._resolved: dict[tuple[datetime, object], int | None] = {}

    def _issue_changed(self, row: Row) -> datetime | None:
        return issue_times(row, self.source_zone)["source_updated_at"]

    def snapshot_days(self) -> list[tuple[date, datetime, bool]]:
        """(date, instant, strictly before it): every local date from the first snapshot date to the last
        run's as-of date; a day is taken at its end, the as-of date at the as-of instant."""
        found = []
        for day in timeline.days(self.first_date, self.as_of_date):
            if day == self.as_of_date:
                found.append((day, self.as_of, False))
            else:
                found.append((day, timeline.day_end(day, self.zone), True))
        return found

    # -- maps (business-rules.md, Issues: trimmed and case-insensitive; first raw spelling in code-point order)

    def _map_state(self, known: list[Version], instant: datetime, before: bool) -> Row | None:
        """A map row as first loaded holds from the beginning (events before the first run read it); one
        added later, from the run that saw it."""
        if known[0].seen_at == self.history.runs[0].as_of:
            return timeline.in_effect(known, instant, before=before).row
        return state_at(known, instant, before=before)

    def map_row(self, versions: Versions, system: str, raw: object, instant: datetime, before: bool) -> Row | None:
        wanted = spelling(raw)
        if wanted is None:
            return None
        matches = [
            row
            for map_key, known in versions.items()
            if map_key[0] == system and spelling(map_key[1]) == wanted  # type: ignore[index]
            and (row := self._map_state(known, instant, before)) is not None
        ]  # fmt: skip
        return min(matches, key=lambda r: str(r[next(c for c in r if c.startswith("raw_"))])) if matches else None

    def priority(self, row: Row, instant: datetime, before: bool) -> str | None:
        """The priority map first (a row with the spelling decides it, even to none), else the fallback."""
        mapped = self.map_row(self.priority_map, row["source"], row["priority"], instant, before)  # type: ignore[arg-type]
        if mapped is not None:
            return mapped["normalized_priority"]  # type: ignore[return-value]
        return fallback_priority(row["priority"])

    # -- projects (README, Dimensions: by key, else a tracker name matching exactly one current project)

    def project_id(self, version: Version) -> int | None:
        """The PM project of an issue version: by key, else the tracker's project name when it names exactly
        one current project as the run that first saw the version loads it; once the name resolved it, the
        issue keeps that project while its tracker project name stays the same (a project renamed later
        orphans none of its issues); a state sent again unchanged keeps its resolution, unresolved too."""
        row = version.row
        assert row is not None
        if row["pm_project_id"] is not None:
            return row["pm_project_id"]  # type: ignore[return-value]
        known = self.issues[issue_key(row)]
        previous = next((v for v in reversed(known[: known.index(version)]) if v.row is not None), None)
        if previous is not None and previous.row is not None and previous.row["pm_project_id"] is None:
            if _same_state(previous.row, row):  # sent again with only its change time moved: not a new state
                return self.project_id(previous)
            if previous.row["project_name"] == row["project_name"]:
                kept = self.project_id(previous)
                if kept is not None:
                    return kept
        cache_key = (version.seen_at, row["project_name"])
        if cache_key not in self._resolved:
            run = self.run_at[version.seen_at]
            named = [p["project_id"] for p in run.source["projects"] if p["project_name"] == row["project_name"]]
            self._resolved[cache_key] = named[0] if len(named) == 1 else None  # type: ignore[assignment]
        return self._resolved[cache_key]

    def project_name_then(self, project_id: int | None, instant: datetime, before: bool) -> object:
        """The name of the project version in effect then (its earliest before it begins; none for an
        inferred member or the unknown project)."""
        if project_id is None:
            return None
        row = last_row(self.projects.get(project_id), instant, before=before)
        return row["project_name"] if row else None

    def current_names(self, project_id: int) -> dict[str, object]:
        """The marts' project columns: current names; 'Unresolved' and NULLs without a PM project."""
        if project_id == UNKNOWN:
            return {"project_name": UNRESOLVED, "client_name": None, "project_type": None}
        project = last_row(self.projects.get(project_id))
        client = last_row(self.clients.get(project["client_id"])) if project else None
        kind = last_row(self.types.get(project["type_id"])) if project else None
        return {
            "project_name": project["project_name"] if project else UNRESOLVED,
            "client_name": client["client_name"] if client else None,
            "project_type": kind["type_name"] if kind else None,
        }

    # -- issues

    def issue_at(self, known: list[Version], instant: datetime, before: bool) -> Version | None:
        """The issue's version at ``instant`` when it exists and is not deleted then: it exists from its
        created_at, is gone once the view no longer has it, and a flag-deleted issue is deleted from its
        deleted_at (even where the deleting version's change time is later)."""
        version = timeline.in_effect(known, instant, before=before)
        if version.row is None:
            return None
        times = issue_times(version.row, self.source_zone)
        if times["created_at"] is not None and not _reached(times["created_at"], instant, before):
            return None
        position = known.index(version)
        for candidate in known[position : position + 2]:
            if candidate.row is None or not candidate.row["is_deleted"]:
                continue
            deleted = issue_times(candidate.row, self.source_zone)["deleted_at"] or candidate.valid_from
            if _reached(min(deleted, candidate.valid_from), instant, before):
                return None
        return version

    def analytics_at(self, key: IssueKey, instant: datetime, before: bool) -> Row | None:
        return state_at(self.analytics.get((key[0], key[2])), instant, before=before)


def _reached(moment: datetime, instant: datetime, before: bool) -> bool:
    """Whether ``moment`` has happened at ``instant`` (strictly before it with ``before``)."""
    return moment < instant or (not before and moment == instant)


# --- fact.issue_daily -------------------------------------------------------------------------------------


def _daily_row(world: World, key: IssueKey, version: Version, day: date, instant: datetime, before: bool) -> Row:
    """business-rules.md, Issues and Facts: one issue on one snapshot day."""
    row = version.row
    assert row is not None
    zone = world.zone
    times = issue_times(row, world.source_zone)
    status = world.map_row(world.status_map, key[0], row["status"], instant, before)
    closed = bool(status and status["is_closed"])
    priority = world.priority(row, instant, before)
    created = timeline.local_date(times["created_at"], zone) if times["created_at"] else None
    closed_date = timeline.local_date(times["closed_at"], zone) if times["closed_at"] else None
    project_id = world.project_id(version)
    analytics = world.analytics_at(key, instant, before)
    return {
        "project_id": UNKNOWN if project_id is None else project_id,
        "project_name": world.project_name_then(project_id, instant, before),
        "status_map_sk": (status["raw_status"], status["normalized_status"], status["is_closed"]) if status else None,
        "created_date": created,
        "priority": priority,
        "is_open": not closed,
        "is_closed": closed,
        "is_high_priority": priority in HIGH_PRIORITY,
        "backlog_age_days": (day - created).days if not closed and created else None,
        "resolution_days": (closed_date - created).days if closed and created and closed_date else None,
        "issue_analytics_sk": timeline.to_utc(analytics["processed_at"], world.source_zone) if analytics else None,  # type: ignore[arg-type]
        **{c: rounded(analytics[c], 4) if analytics else None for c in SCORES},
        "discipline_category_id": analytics["discipline_category_id"] if analytics else None,
        "primary_category_id": analytics["primary_category_id"] if analytics else None,
    }


def _daily(world: World) -> Table:
    """One row per (issue, local date) for every issue that exists and is not deleted at the end of that day
    (the as-of date: at the as-of instant), from the first snapshot date on."""
    found: Table = {}
    days = world.snapshot_days()
    for key, known in world.issues.items():
        for day, instant, before in days:
            version = world.issue_at(known, instant, before)
            if version is not None:
                found[(day, *key)] = _daily_row(world, key, version, day, instant, before)
    return found


def issue_daily(history: History) -> Table:
    """The expected fact.issue_daily, keyed (snapshot_date, source_system, source_project_id, source_issue_id):
    project_id (-1 without a PM project), is_open, is_closed, is_high_priority, resolution_days and the rest."""
    return _daily(World(history))


# --- fact.issue_event ------------------------------------------------------------------------------------


def _closed_then(world: World, row: Row, instant: datetime) -> bool:
    status = world.map_row(world.status_map, row["source"], row["status"], instant, False)  # type: ignore[arg-type]
    return bool(status and status["is_closed"])


def _events_of(world: World, key: IssueKey, known: list[Version]) -> Table:
    """README, Facts: created, status change, closed, reopened and deleted, one per (issue, type, instant),
    timed from the source's change time; an issue first seen closed or deleted gets that event at its
    closed_at / deleted_at (both when it is both). Statuses are the raw ones the tracker sent; a status change
    is a change of the raw status as the maps read it (trimmed, case-insensitive: ``Solved`` to `` solved ``
    is none); closed and reopened read both statuses with the map in effect at the change (a later map change
    re-reads no history)."""
    found: Table = {}
    resolved = [p for v in known if v.row is not None and (p := world.project_id(v)) is not None]

    def add(kind: str, at: datetime, before: Row | None, after: Row | None, version: Version) -> None:
        # the project of the version it comes from; without one, the one another version resolved (the
        # issue was always that project's, the warehouse learnt it later)
        project = world.project_id(version)
        if project is None and resolved:
            project = max(resolved)
        found[(*key, kind, at)] = {
            "event_date": timeline.local_date(at, world.zone),
            "from_status": before["status"] if before else None,
            "to_status": after["status"] if after else None,
            "project_id": UNKNOWN if project is None else project,
        }

    previous: Row | None = None
    owner: Version | None = None  # the version whose project an event carries
    for version in known:
        if version.row is not None:
            row, owner = version.row, version
        elif previous is not None:  # gone from the view: deleted at the source from the run that no longer saw it
            row = {**previous, "is_deleted": True}
        else:
            continue
        assert owner is not None
        if previous is None:  # first seen
            times = issue_times(row, world.source_zone)
            began = times["created_at"] or version.valid_from  # the issue's first state holds from its creation
            add("created", began, None, row, owner)
            if _closed_then(world, row, began):  # closed in its first state, which holds from its creation
                add("closed", times["closed_at"] or began, None, row, owner)
            if row["is_deleted"]:
                add("deleted", times["deleted_at"] or version.valid_from, None, row, owner)
        else:
            at = version.valid_from
            if spelling(previous["status"]) != spelling(row["status"]):
                add("status_change", at, previous, row, owner)
                was, now = _closed_then(world, previous, at), _closed_then(world, row, at)
                if now and not was:
                    add("closed", at, previous, row, owner)
                if was and not now and not row["is_deleted"]:  # open <=> not closed and not deleted
                    add("reopened", at, previous, row, owner)
            if row["is_deleted"] and not previous["is_deleted"]:
                add("deleted", at, previous, row, owner)
        previous = row
    return found


def _events(world: World) -> Table:
    found: Table = {}
    for key, known in world.issues.items():
        found.update(_events_of(world, key, known))
    return found


def issue_activity(history: History) -> dict[IssueKey, list[tuple[str, datetime, int]]]:
    """For the review-issue bridge (README: its events, dates and projects come from the issue events): per
    issue alive now (neither flagged deleted nor gone from the view; one that came back counts again), its
    created and closed events as ("opened" / "closed", instant, project)."""
    world = World(history)
    alive = {key for key, known in world.issues.items() if (now := known[-1].row) is not None and not now["is_deleted"]}
    found: dict[IssueKey, list[tuple[str, datetime, int]]] = {}
    for (*key, kind, at), event in _events(world).items():
        if kind in ("created", "closed") and tuple(key) in alive:
            activity = "opened" if kind == "created" else "closed"
            found.setdefault(tuple(key), []).append((activity, at, event["project_id"]))  # type: ignore[arg-type]
    return found


# --- brg.issue_category ----------------------------------------------------------------------------------


def _current_category_name(world: World, category_id: object) -> object:
    row = last_row(world.categories.get(category_id))
    return row["category_name"] if row else None


def _bridge(world: World) -> Table:
    """README, Facts: one row per (issue, role) for the discipline, primary and secondary category of the
    issue's current text analytics (matched by source system and tracker issue id), with the category's
    current version; every issue the warehouse knows, deleted ones included (a dimension keeps them)."""
    found: Table = {}
    for key in world.issues:
        analytics = last_analytics(world, key)
        if analytics is None:
            continue
        for role, column in CATEGORY_ROLES.items():
            if analytics[column] is not None:
                found[(*key, role)] = {
                    "category_id": analytics[column],
                    "issue_category_sk": _current_category_name(world, analytics[column]),
                }
    return found


def last_analytics(world: World, key: IssueKey) -> Row | None:
    """The issue's current text analytics (none once ProcessedIssues no longer has them)."""
    known = world.analytics.get((key[0], key[2]))
    return known[-1].row if known else None


# --- the marts --------------------------------------------------------------------------------------------


def _calendar(day: date, start_month: int) -> dict[str, object]:
    """fiscal_year (labelled by the calendar year it ends in) and the ISO week label."""
    year, week, _ = day.isocalendar()
    return {
        "fiscal_year": day.year + (1 if start_month != 1 and day.month >= start_month else 0),
        "iso_week_label": f"{year}-W{week:02d}",
    }


def _mean(values: list[int] | list[Decimal], places: int) -> Decimal | None:
    if not values:
        return None
    return rounded(Decimal(sum(values)) / len(values), places)  # type: ignore[arg-type]


def _age_bucket(age: int) -> tuple[str, int]:
    for most, label, order in AGE_BUCKETS:
        if age <= most:
            return label, order
    return "90+", 4


def _backlog_age(world: World, daily: Table) -> Table:
    """mart.issue_backlog_age: open issues on the latest published as-of date by project and age bucket."""
    groups: dict[tuple, list[Row]] = {}
    for (day, *_), row in daily.items():
        if day == world.as_of_date and row["is_open"]:
            groups.setdefault((row["project_id"], _age_bucket(row["backlog_age_days"])), []).append(row)  # type: ignore[arg-type]
    return {
        (project_id, label): {
            "snapshot_date": world.as_of_date,
            **world.current_names(project_id),
            "bucket_order": order,
            "open_issues": len(rows),
            "high_priority_open": sum(bool(r["is_high_priority"]) for r in rows),
            "oldest_age_days": max(r["backlog_age_days"] for r in rows),  # type: ignore[type-var]
        }
        for (project_id, (label, order)), rows in groups.items()
    }


def _discipline(world: World, key: IssueKey) -> str:
    """The level-1 category the issue's current text analytics give it, current name; 'Unassigned' without."""
    analytics = last_analytics(world, key)
    name = _current_category_name(world, analytics["discipline_category_id"]) if analytics else None
    return UNASSIGNED if name is None else name  # type: ignore[return-value]


def _trend(world: World, daily: Table) -> Table:
    """mart.issue_trend: per day, project, discipline and priority."""
    groups: dict[tuple, list[Row]] = {}
    disciplines: dict[IssueKey, str] = {}
    for (day, *issue), row in daily.items():
        key: IssueKey = tuple(issue)  # type: ignore[assignment]
        if key not in disciplines:
            disciplines[key] = _discipline(world, key)
        group = (day, row["project_id"], disciplines[key], row["priority"] or NO_PRIORITY)
        groups.setdefault(group, []).append({**row, "snapshot_date": day})
    start = world.history.settings.fiscal_year_start_month
    return {
        group: {
            **_calendar(group[0], start),
            **world.current_names(group[1]),  # type: ignore[arg-type]
            "issues": len(rows),
            "open_issues": sum(bool(r["is_open"]) for r in rows),
            "closed_issues": sum(bool(r["is_closed"]) for r in rows),
            "opened_today": sum(r["created_date"] == group[0] for r in rows),
            "avg_open_age_days": _mean([r["backlog_age_days"] for r in rows if r["backlog_age_days"] is not None], 1),  # type: ignore[arg-type]
        }
        for group, rows in groups.items()
    }


def _urgency(world: World, daily: Table) -> Table:
    """mart.issue_urgency: per day and project with open issues; high urgency <=> urgency_score >= 0.8."""
    groups: dict[tuple, list[Row]] = {}
    for (day, *_), row in daily.items():
        if row["is_open"]:
            groups.setdefault((day, row["project_id"]), []).append(row)
    start = world.history.settings.fiscal_year_start_month
    found: Table = {}
    for (day, project_id), rows in groups.items():
        scores = [r["urgency_score"] for r in rows if r["urgency_score"] is not None]
        urgent = [r for r in rows if r["urgency_score"] is not None and r["urgency_score"] >= HIGH_URGENCY]  # type: ignore[operator]
        found[(day, project_id)] = {
            **_calendar(day, start),
            **world.current_names(project_id),  # type: ignore[arg-type]
            "open_issues": len(rows),
            "scored_open": len(scores),
            "high_urgency_open": len(urgent),
            "high_urgency_high_priority_open": sum(bool(r["is_high_priority"]) for r in urgent),
            "avg_urgency_open": _mean(scores, 4),  # type: ignore[arg-type]
            "max_urgency_open": max(scores) if scores else None,  # type: ignore[type-var]
        }
    return found


# --- the whole group --------------------------------------------------------------------------------------


def expected(history: History) -> dict[str, Table]:
    world = World(history)
    daily = _daily(world)
    return {
        "fact.issue_daily": daily,
        "fact.issue_event": _events(world),
        "brg.issue_category": _bridge(world),
        "mart.issue_backlog_age": _backlog_age(world, daily),
        "mart.issue_trend": _trend(world, daily),
        "mart.issue_urgency": _urgency(world, daily),
    }


# --- the warehouse ----------------------------------------------------------------------------------------


def _date(key: object) -> date | None:
    """A dim.date key (yyyymmdd) as a date; -1 (unknown) as None."""
    if key is None or key == UNKNOWN:
        return None
    number = int(key)  # type: ignore[call-overload]
    return date(number // 10000, number // 100 % 100, number % 100)


def _rows(conn: sa.Connection, sql: str) -> list[dict[str, object]]:
    return [dict(row._mapping) for row in conn.execute(sa.text(sql))]


def _instant(value: object) -> datetime | None:
    return None if value is None else value.astimezone(UTC)  # type: ignore[attr-defined]


def _score(value: object) -> Decimal | None:
    return None if value is None else Decimal(value)  # type: ignore[arg-type]


DAILY_SQL = """
SELECT f.snapshot_date_key, k.source_system, k.source_project_id, k.source_issue_id,
    p.project_id, p.project_name, s.raw_status, s.normalized_status, s.is_closed AS map_closed, f.status_map_sk,
    f.created_date_key, f.priority, f.is_open, f.is_closed, f.is_high_priority, f.backlog_age_days,
    f.resolution_days, f.issue_analytics_sk, a.processed_at, f.urgency_score, f.complexity_score,
    f.sentiment_score, f.categorization_confidence, f.discipline_category_id, f.primary_category_id
FROM fact.issue_daily AS f
JOIN dim.issue_key AS k ON k.issue_key = f.issue_key
LEFT JOIN dim.project AS p ON p.project_sk = f.project_sk
LEFT JOIN dim.status_map AS s ON s.status_map_sk = f.status_map_sk
LEFT JOIN dim.issue_analytics AS a ON a.issue_analytics_sk = f.issue_analytics_sk
"""


def actual_daily(conn: sa.Connection) -> Table:
    found: Table = {}
    for r in _rows(conn, DAILY_SQL):
        key = (_date(r["snapshot_date_key"]), r["source_system"], r["source_project_id"], r["source_issue_id"])
        found[key] = {
            "project_id": UNKNOWN if r["project_id"] is None else r["project_id"],
            "project_name": r["project_name"] if r["project_id"] not in (None, UNKNOWN) else None,
            "status_map_sk": None if r["status_map_sk"] == UNKNOWN
            else (r["raw_status"], r["normalized_status"], r["map_closed"]),
            "created_date": _date(r["created_date_key"]),
            "priority": r["priority"],
            "is_open": r["is_open"],
            "is_closed": r["is_closed"],
            "is_high_priority": r["is_high_priority"],
            "backlog_age_days": r["backlog_age_days"],
            "resolution_days": r["resolution_days"],
            "issue_analytics_sk": None if r["issue_analytics_sk"] == UNKNOWN else _instant(r["processed_at"]),
            **{c: _score(r[c]) for c in SCORES},
            "discipline_category_id": r["discipline_category_id"],
            "primary_category_id": r["primary_category_id"],
        }  # fmt: skip
    return found


EVENT_SQL = """
SELECT k.source_system, k.source_project_id, k.source_issue_id, e.event_type, e.event_at, e.event_date_key,
    e.from_status, e.to_status, e.project_id
FROM fact.issue_event AS e
JOIN dim.issue_key AS k ON k.issue_key = e.issue_key
"""


def actual_events(conn: sa.Connection) -> Table:
    return {
        (r["source_system"], r["source_project_id"], r["source_issue_id"], r["event_type"], _instant(r["event_at"])): {
            "event_date": _date(r["event_date_key"]),
            "from_status": r["from_status"],
            "to_status": r["to_status"],
            "project_id": r["project_id"],
        }
        for r in _rows(conn, EVENT_SQL)
    }


BRIDGE_SQL = """
SELECT k.source_system, k.source_project_id, k.source_issue_id, b.category_role, b.category_id,
    b.issue_category_sk, c.category_name
FROM brg.issue_category AS b
JOIN dim.issue_key AS k ON k.issue_key = b.issue_key
LEFT JOIN dim.issue_category AS c ON c.issue_category_sk = b.issue_category_sk
"""
MART_NAMES = ("project_name", "client_name", "project_type")


def actual_bridge(conn: sa.Connection) -> Table:
    return {
        (r["source_system"], r["source_project_id"], r["source_issue_id"], r["category_role"]): {
            "category_id": r["category_id"],
            "issue_category_sk": None if r["issue_category_sk"] == UNKNOWN else r["category_name"],
        }
        for r in _rows(conn, BRIDGE_SQL)
    }


def _mart(conn: sa.Connection, name: str, key: tuple[str, ...]) -> Table:
    found: Table = {}
    for r in _rows(conn, f"SELECT * FROM mart.{name}"):
        found[tuple(r.pop(c) for c in key)] = r
    return found


def actual(conn: sa.Connection) -> dict[str, Table]:
    return {
        "fact.issue_daily": actual_daily(conn),
        "fact.issue_event": actual_events(conn),
        "brg.issue_category": actual_bridge(conn),
        "mart.issue_backlog_age": _mart(conn, "issue_backlog_age", ("project_id", "age_bucket")),
        "mart.issue_trend": _mart(conn, "issue_trend", ("snapshot_date", "project_id", "discipline", "priority")),
        "mart.issue_urgency": _mart(conn, "issue_urgency", ("snapshot_date", "project_id")),
    }
