"""Time zone names: IANA in the settings and in Python, the database's own names in SQL.

PostgreSQL's ``AT TIME ZONE`` takes IANA names; SQL Server's takes Windows names (``sys.time_zone_info``).
The settings hold IANA names (a Windows name is accepted and read as its IANA zone), and every zone name
that reaches SQL (the fact procedures' ``p_time_zone``, the ``time_zone`` the extract stamps on staged rows)
goes through ``Dialect.zone_name`` (flows/dialects.py), so the extract and the loaders agree on one dialect's
spelling.

The mapping is CLDR's windowsZones table as ``tzlocal`` ships it (``tz_win``: IANA to Windows, aliases
included; ``win_tz``: Windows to the zone CLDR lists first for it). SQL Server applies its own (Windows)
rules to a Windows zone, not IANA's: they agree for current years; where a zone's history differs (years
before Windows had the zone), SQL Server's reading of those years follows Windows.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import tz_win, win_tz


def iana_name(name: str) -> str:
    """``name`` as an IANA zone: itself when it is one, its IANA zone when it is a Windows name. ValueError
    (saying both forms) otherwise."""
    if name in win_tz:  # a Windows name: CLDR's first zone for it
        return win_tz[name]
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            "an IANA time zone name such as 'Australia/Sydney' or 'UTC', or a Windows one such as "
            "'AUS Eastern Standard Time'"
        ) from exc
    return name


def windows_name(zone: str) -> str:
    """The Windows name of the IANA ``zone``; ValueError when CLDR maps it to none."""
    try:
        return tz_win[zone]
    except KeyError:
        raise ValueError(
            f"time zone {zone!r} has no Windows name (CLDR windowsZones), so SQL Server cannot convert times "
            "in it; choose the zone of the same offsets that has one (e.g. 'America/Chicago' for 'CST6CDT')"
        ) from None
