"""Time, as the business rules define it, and the versions of a source row as the runs saw them.

Instants are aware UTC datetimes. The source's offset-less local times are read by the rule of
business-rules.md (Time): an ambiguous wall time (the repeated hour) is its first occurrence, a wall time
in the skipped hour is moved forward by the gap; of an ordered pair (created, closed), the later one takes
its second occurrence when only that keeps the pair in order.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from model.history import History, Row, Run


def to_utc(wall: datetime | None, zone: str) -> datetime | None:
    """The instant of a naive local wall time: first occurrence when ambiguous, forward when skipped."""
    if wall is None:
        return None
    # PEP 495: fold=0 is the first occurrence of a repeated time, and reads a skipped time with the offset
    # before the gap, which lands it the gap's length later
    return wall.replace(tzinfo=ZoneInfo(zone), fold=0).astimezone(UTC)


def to_utc_pair(earlier: datetime | None, later: datetime | None, zone: str) -> tuple[datetime | None, datetime | None]:
    """Both instants of an ordered pair; the later takes its second occurrence when only that keeps the order."""
    first, second = to_utc(earlier, zone), to_utc(later, zone)
    if first is not None and second is not None and second < first and later is not None:
        second_occurrence = later.replace(tzinfo=ZoneInfo(zone), fold=1).astimezone(UTC)
        if second_occurrence >= first:
            second = second_occurrence
    return first, second


def utc(value: datetime | None) -> datetime | None:
    """A naive source time that is already UTC, as an instant."""
    return None if value is None else value.replace(tzinfo=UTC)


def local_date(instant: datetime, zone: str) -> date:
    return instant.astimezone(ZoneInfo(zone)).date()


def day_start(day: date, zone: str) -> datetime:
    """The instant the local day begins."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def day_end(day: date, zone: str) -> datetime:
    """The instant the local day ends (the next one's start): what holds "at the end of the day" is what
    holds just before it."""
    return day_start(day + timedelta(days=1), zone)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def first_snapshot_date(history: History) -> date:
    """The daily snapshot's first date: the first run's as-of date, or the earlier date a back-fill reached
    (README, Backfilling: days before the first snapshot date are added, history is extended back)."""
    zone = history.settings.business_timezone
    reached = [run.backfill_from for run in history.runs if run.backfill_from is not None]
    return min([local_date(history.runs[0].as_of, zone), *reached])


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


@dataclass(frozen=True)
class Version:
    """One state of a source row: from ``valid_from`` until the next version's; ``row`` None once it is gone
    from the source (hard-deleted, or no longer in the issues view)."""

    valid_from: datetime
    row: Row | None
    seen_at: datetime  # the as-of of the first run that saw this state


Versions = dict[Hashable, list[Version]]


def versions(
    history: History,
    table: str,
    key: Callable[[Row], Hashable],
    change_time: Callable[[Row], datetime | None] | None = None,
) -> Versions:
    """Every state of every row of ``table`` that some run saw, per key, oldest first.

    A state starts at the row's change time where the source has one (``change_time``), else at the as-of of
    the first run that saw it; a row missing from a run's snapshot is gone from that run's as-of.
    """
    found: Versions = {}
    for run in history.runs:
        present = set()
        for row in run.source[table]:
            k = key(row)
            present.add(k)
            known = found.setdefault(k, [])
            if known and known[-1].row == row:
                continue
            started = (change_time(row) if change_time else None) or run.as_of
            if known and started < known[-1].valid_from:
                started = known[-1].valid_from  # a change stamped before the state it replaces: not a new past
            known.append(Version(started, row, run.as_of))
        for k, known in found.items():
            if k not in present and known[-1].row is not None:
                known.append(Version(run.as_of, None, run.as_of))
    return found


def in_effect(known: list[Version], instant: datetime, *, before: bool = False) -> Version:
    """The version in effect at ``instant`` (strictly before it with ``before``: the end of a day); before
    the first known version, the first one (the row as first seen is the best knowledge of its past)."""
    chosen = known[0]
    for version in known:
        if version.valid_from < instant or (not before and version.valid_from == instant):
            chosen = version
        else:
            break
    return chosen


def loaded_rows(
    history: History, table: str, key: Callable[[Row], Hashable], rejected: Callable[[Row, Run], bool]
) -> History:
    """The runs with ``table`` as the warehouse loaded it: a quarantined row is no change (its key keeps the
    state loaded before: it is still at the source), one never loaded is not there, nor is a NULL key."""
    last_good: dict[Hashable, Row] = {}
    runs = []
    for run in history.runs:
        rows = []
        for row in run.source[table]:
            k = key(row)
            if k is None or (isinstance(k, tuple) and None in k):
                continue
            if rejected(row, run):
                if k in last_good:
                    rows.append(last_good[k])
                continue
            last_good[k] = row
            rows.append(row)
        runs.append(Run(run.as_of, {**run.source, table: rows}, run.full_refresh, run.backfill_from))
    return History(runs=runs, settings=history.settings)


def loaded_versions(
    history: History,
    table: str,
    key: Callable[[Row], Hashable],
    rejected: Callable[[Row, Run], bool],
    change_time: Callable[[Row], datetime | None] | None = None,
) -> Versions:
    """``versions`` of ``table`` as the warehouse loaded it (``loaded_rows``)."""
    return versions(loaded_rows(history, table, key, rejected), table, key, change_time)


def rounded(value: object, places: int) -> Decimal | None:
    """What a numeric(p, places) column (or round(x, places)) stores: half away from zero."""
    if value is None:
        return None
    return Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)  # type: ignore[arg-type]
