"""Offset-less local source times in a daylight-saving change, resolved by one rule (business-rules.md, Time).

Where the clocks go back (first Sunday of April in Australia/Sydney) the wall times of the repeated hour
happen twice: they are *ambiguous*. Where they go forward (first Sunday of October) the wall times of the
skipped hour never happen: they *do not exist*. The databases resolve both silently, and differently
(PostgreSQL reads an ambiguous time as the later, standard-time instant; SQL Server as the earlier), so the
warehouse does it itself, the same way in every dialect:

* an ambiguous time is its **first occurrence** (the offset in effect before the change: daylight time);
* a non-existent time is **moved forward by the gap** (read with the offset before the change: 02:30 in the
  skipped hour is 03:30 daylight time);
* except that the later time of a declared ordered pair (``ordered_instants``: closed after created) takes its
  **second occurrence** when the first would put it before its partner and the second does not: a pair that is
  in order under some valid reading is stored with that reading (created 02:50 daylight, closed 02:10 standard
  time are 20 minutes apart, not 40 minutes the wrong way round). The earlier time of a pair always takes the
  rule's reading (the first occurrence: the earliest it can be).

The changes come from Python's time zone database for the source's zone (``PMW_SOURCE_TIMEZONE``), for the
years the staged times span, and reach SQL as literals: both dialects compare each staged local time with the
same intervals and subtract the same offsets. Only the staged rows with such a time are touched: all their
timestamps are converted to UTC in staging (the database's own conversion for the times that have one
reading) and their ``time_zone`` becomes ``UTC``, so the loaders store exactly these instants. Every other
row keeps its local wall times: outside the changes a wall time has one reading, and the order of two such
wall times is the order of their instants, so the quarantine's ordered-pair rule compares instants either
way. Each resolved time is recorded in ``ctl.local_time_resolution`` (the ``local_times_resolved`` warning
check lists a run's). Assumes a zone changes its offset at most once in any two days (true of every zone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from flows import dialects
from flows.sources import SourceObject

FIRST_YEAR, LAST_YEAR = 1900, 2199  # the quarantine's date range: outside it a row is rejected anyway
RECORDS = "ctl.local_time_resolution"
FIRST = "ambiguous (repeated hour): the first occurrence"
SECOND = "ambiguous (repeated hour): the second occurrence, which keeps {later} after {earlier}"
FORWARD = "non-existent (skipped hour): moved forward by the gap"


@dataclass(frozen=True)
class Transition:
    """One change of a zone's UTC offset, as wall times: ``[wall_from, wall_to)`` is the repeated hour (the
    offset went down) or the skipped hour (it went up)."""

    wall_from: datetime
    wall_to: datetime
    before: int  # UTC offset before the change, seconds
    after: int

    @property
    def repeats(self) -> bool:
        return self.after < self.before


def _offset(zone: ZoneInfo, instant: datetime) -> int:
    offset = instant.astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


@lru_cache(maxsize=64)
def transitions(zone_name: str, first_year: int, last_year: int) -> tuple[Transition, ...]:
    """The offset changes of ``zone_name`` whose wall times fall in ``first_year`` to ``last_year``."""
    zone = ZoneInfo(zone_name)
    day = timedelta(days=1)
    start, end = datetime(first_year, 1, 1, tzinfo=UTC) - 2 * day, datetime(last_year + 1, 1, 1, tzinfo=UTC) + day
    found = []
    at, offset = start, _offset(zone, start)
    while at < end:
        following = _offset(zone, at + day)
        if following != offset:  # a change within (at, at + 1 day]: find its first second
            low, high = 0, 86_400  # seconds after ``at``: the old offset at low, the new one at high
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if _offset(zone, at + timedelta(seconds=middle)) == offset else (low, middle)
            change = (at + timedelta(seconds=high)).replace(tzinfo=None)
            wall_from = change + timedelta(seconds=min(offset, following))
            wall_to = change + timedelta(seconds=max(offset, following))
            if first_year <= wall_from.year <= last_year:
                found.append(Transition(wall_from, wall_to, offset, following))
        at, offset = at + day, following
    return tuple(found)


class _Sql:
    """The SQL expressions of the rule over staged row ``s``, for one dialect and a set of changes."""

    def __init__(self, dialect: dialects.Dialect, changes: tuple[Transition, ...]) -> None:
        self.dialect, self.changes = dialect, changes

    @staticmethod
    def _literal(value: datetime) -> str:
        return f"'{value.isoformat(sep='T')}'"  # ISO 8601 with a T: read alike whatever the session's date format

    def _within(self, column: str, change: Transition) -> str:
        return f"(s.{column} >= {self._literal(change.wall_from)} AND s.{column} < {self._literal(change.wall_to)})"

    def _shift(self, column: str, seconds: int) -> str:
        """The wall time ``s.column`` read with UTC offset ``seconds``, as a UTC wall time."""
        return self.dialect.minus_seconds_sql(f"s.{column}", seconds)

    def needs_rule(self, column: str) -> str:
        return "(" + " OR ".join(self._within(column, c) for c in self.changes) + ")"

    def repeated(self, column: str) -> str:
        return "(" + " OR ".join([self._within(column, c) for c in self.changes if c.repeats] or ["1 = 0"]) + ")"

    def first(self, column: str) -> str:
        """The rule's reading: the offset before the change (first occurrence; forward by a gap)."""
        cases = " ".join(f"WHEN {self._within(column, c)} THEN {self._shift(column, c.before)}" for c in self.changes)
        return f"CASE {cases} END"

    def second(self, column: str) -> str:
        """The second occurrence of a repeated time (NULL for any other)."""
        cases = [f"WHEN {self._within(column, c)} THEN {self._shift(column, c.after)}" for c in self.changes
                 if c.repeats]  # fmt: skip
        return f"CASE {' '.join(cases)} END" if cases else "NULL"

    def converted(self, column: str) -> str:
        """The database's conversion of a time with one reading (what the loaders do with ``time_zone``)."""
        return self.dialect.local_to_utc_sql(f"s.{column}", "s.time_zone")

    def instant(self, utc_wall: str) -> str:
        """A UTC wall time as an instant, for a column with a zone."""
        return self.dialect.utc_instant_sql(utc_wall)


def _plan(source: SourceObject, columns: list[str], sql: _Sql) -> dict[str, tuple[str, str]]:
    """{column: (its UTC value, the reading taken, as SQL)} for a staged row that needs the rule somewhere."""
    plain = {c: f"CASE WHEN {sql.needs_rule(c)} THEN {sql.first(c)} ELSE {sql.converted(c)} END" for c in columns}
    plan = {}
    for column in columns:
        partners = [earlier for earlier, later in source.ordered_instants if later == column and earlier in columns]
        reading = f"CASE WHEN {sql.repeated(column)} THEN '{FIRST}' ELSE '{FORWARD}' END"
        value = plain[column]
        if partners:
            first, second = sql.first(column), sql.second(column)
            out_of_order = " OR ".join(f"{first} < {plain[e]}" for e in partners)
            in_order = " AND ".join(f"({plain[e]} IS NULL OR {second} >= {plain[e]})" for e in partners)
            later_reading = f"{sql.repeated(column)} AND ({out_of_order}) AND {in_order}"
            value = f"CASE WHEN {later_reading} THEN {second} ELSE {plain[column]} END"
            kept = SECOND.format(later=column, earlier=" and ".join(partners))
            reading = f"CASE WHEN {later_reading} THEN '{kept}' ELSE {reading} END"
        plan[column] = (value, reading)
    return plan


def staged_years(conn: sa.Connection, source: SourceObject, columns: list[str], run_id: int, zone: str) -> range:
    """The years the staged local times of this run span (empty when there are none); ``zone`` as stamped."""
    bounds = ", ".join(f"MIN(s.{c}), MAX(s.{c})" for c in columns)
    found = conn.execute(
        sa.text(f"SELECT {bounds} FROM stg.{source.staging_table} AS s WHERE s.run_id = :r AND s.time_zone = :z"),
        {"r": run_id, "z": zone},
    ).one()
    years = [value.year for value in found if value is not None]
    if not years:
        return range(0)
    return range(max(min(years), FIRST_YEAR), min(max(years), LAST_YEAR) + 1)


def resolve_local_times(
    conn: sa.Connection, source: SourceObject, columns: list[str], run_id: int, zone: str, key_sql: str
) -> int:
    """Resolve this run's staged local times of ``source`` (its offset-less timestamp ``columns``, staged with
    time zone ``zone``) that fall in a daylight-saving change, by the rule above; record each in
    ctl.local_time_resolution (``key_sql``: the business key as text, over ``s``). Returns the rows changed."""
    local = [p for p in source.watermark_partitions() if p.time_semantics == "local"]
    if not local or not columns or zone == "UTC":
        return 0
    found = {"r": run_id, "s": source.name}
    conn.execute(sa.text(f"DELETE FROM {RECORDS} WHERE run_id = :r AND source_object = :s"), found)  # a retry
    dialect = dialects.of(conn)
    stamped = dialect.zone_name(zone)  # as the extract stamped the staged rows
    years = staged_years(conn, source, columns, run_id, stamped)
    changes = transitions(zone, years.start, years.stop - 1) if years else ()
    if not changes:
        return 0
    inserts, update = statements(source, columns, dialect, changes, key_sql)
    params = {**found, "z": stamped}
    for insert in inserts:
        conn.execute(sa.text(insert), params)
    return int(conn.execute(sa.text(update), params).rowcount)


def statements(
    source: SourceObject, columns: list[str], dialect: dialects.Dialect, changes: tuple[Transition, ...], key_sql: str
) -> tuple[list[str], str]:
    """The SQL of the rule for ``changes`` (binds :r run, :s source, :z zone): one INSERT per column into
    ctl.local_time_resolution, then the UPDATE of the staged rows."""
    sql = _Sql(dialect, changes)
    plan = _plan(source, columns, sql)
    staged = f"stg.{source.staging_table} AS s WHERE s.run_id = :r AND s.time_zone = :z"
    inserts = [
        f"INSERT INTO {RECORDS} (run_id, source_object, business_key, column_name, local_value, time_zone, "
        f"resolved_at, resolution) SELECT :r, :s, {key_sql}, '{column}', s.{column}, s.time_zone, "
        f"{sql.instant(value)}, {reading} FROM {staged} AND {sql.needs_rule(column)}"
        for column, (value, reading) in plan.items()
    ]
    assignments = ", ".join(f"{column} = {value}" for column, (value, _) in plan.items())
    anywhere = " OR ".join(sql.needs_rule(column) for column in columns)
    update = dialect.update_sql(f"stg.{source.staging_table}", "s", f"{assignments}, time_zone = 'UTC'",
                                f"s.run_id = :r AND s.time_zone = :z AND ({anywhere})")  # fmt: skip
    return inserts, update


def forget_quarantined(conn: sa.Connection, source: SourceObject, run_id: int) -> None:
    """Drop the records of rows this run then quarantined: they were not stored with any reading."""
    if all(p.time_semantics != "local" for p in source.watermark_partitions()):
        return
    conn.execute(
        sa.text(f"DELETE FROM {RECORDS} WHERE run_id = :r AND source_object = :s AND business_key IN "
                "(SELECT q.business_key FROM ctl.quarantine AS q WHERE q.run_id = :r AND q.source_object = :s)"),
        {"r": run_id, "s": source.name},
    )  # fmt: skip
