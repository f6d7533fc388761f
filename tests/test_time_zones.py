"""Time zones in one place (issue #15): IANA names in the settings, a Windows name accepted and read as its
IANA zone, and every zone name that reaches SQL Server's ``AT TIME ZONE`` (the fact procedures' zone, the
zone the extract stamps on staged rows) mapped to its Windows name by CLDR's windowsZones table."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

import pytest
import sqlalchemy as sa
from tzlocal.windows_tz import win_tz

from flows import dialects, extract, local_times, time_zones
from flows.errors import ConfigurationError
from flows.pipeline import Context
from flows.settings import Settings
from flows.sources import SOURCES

TESTS = Path(__file__).parent
IANA = available_timezones()


def _zones_the_tests_use() -> set[str]:
    """Every IANA zone named in a string anywhere in the tests (and the settings' defaults), found by reading
    them: a test that takes another zone later is covered without anyone listing it here."""
    named = {
        "UTC",
        Settings.model_fields["business_timezone"].default,
        Settings.model_fields["source_timezone"].default,
    }
    for path in TESTS.rglob("*.py"):
        named |= {
            m for m in re.findall(r"""["']([A-Za-z_]+(?:/[A-Za-z_+-]+)+|UTC)["']""", path.read_text()) if m in IANA
        }
    return named


ZONES = sorted(_zones_the_tests_use() | {zone for zone in IANA if zone.startswith("Australia/")})


def test_the_zones_enumerated_include_those_the_tests_run_in() -> None:
    assert {"Australia/Sydney", "Australia/Perth", "Pacific/Kiritimati", "UTC"} <= set(ZONES)
    assert len([z for z in ZONES if z.startswith("Australia/")]) >= 20  # the aliases (ACT, NSW, ...) too


@pytest.mark.parametrize("zone", ZONES)
def test_every_zone_has_a_windows_name_that_keeps_its_offsets(zone: str) -> None:
    """SQL Server converts with the Windows zone; CLDR's zone for that Windows name must change its offset at
    the same instants as ``zone`` (compared through the project's own transition finder) for 2000-2037."""
    windows = time_zones.windows_name(zone)
    assert windows in win_tz, f"{windows!r} is not a Windows zone CLDR knows"
    same = win_tz[windows]
    assert local_times.transitions(zone, 2000, 2037) == local_times.transitions(same, 2000, 2037)
    instant = datetime(2026, 1, 15, tzinfo=ZoneInfo("UTC"))
    assert instant.astimezone(ZoneInfo(zone)).utcoffset() == instant.astimezone(ZoneInfo(same)).utcoffset()
    assert dialects.named("mssql").zone_name(zone) == windows
    assert dialects.named("postgresql").zone_name(zone) == zone  # PostgreSQL takes the IANA name itself


def test_a_windows_name_in_the_settings_is_read_as_its_iana_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMW_BUSINESS_TIMEZONE", "AUS Eastern Standard Time")
    monkeypatch.setenv("PMW_SOURCE_TIMEZONE", "W. Australia Standard Time")
    settings = Settings(_env_file=None)
    assert (settings.business_timezone, settings.source_timezone) == ("Australia/Sydney", "Australia/Perth")


def test_a_zone_sql_server_has_no_name_for_is_refused_before_a_run_reads_anything() -> None:
    assert "CST6CDT" in IANA
    with pytest.raises(ValueError, match=r"'CST6CDT' has no Windows name.*'America/Chicago'"):
        time_zones.windows_name("CST6CDT")
    # a context on SQL Server (an engine that only names its dialect: no SQL Server runs here)
    mssql = sa.create_mock_engine("mssql+pyodbc://", executor=lambda *a, **k: None)
    settings = Settings(_env_file=None, business_timezone="CST6CDT")
    with pytest.raises(ConfigurationError, match=r"PMW_BUSINESS_TIMEZONE has the value 'CST6CDT'.*America/Chicago"):
        Context(settings, mssql, mssql, True).check_zones()  # type: ignore[arg-type]
    Context(Settings(_env_file=None), mssql, mssql, True).check_zones()  # type: ignore[arg-type]
    assert Context(Settings(_env_file=None), mssql, mssql, True).database_zone("Australia/Sydney") == (  # type: ignore[arg-type]
        "AUS Eastern Standard Time"
    )


@pytest.mark.parametrize("dialect", ["postgresql", "mssql"])
def test_the_extract_stamps_each_window_with_the_zone_as_the_warehouse_names_it(dialect: str) -> None:
    """The loaders pass the staged rows' ``time_zone`` to ``AT TIME ZONE``: on SQL Server a Windows name."""
    expected = {"local": dialects.named(dialect).zone_name("Australia/Perth"), "utc": "UTC"}
    for source in SOURCES:
        windows = extract.plan_windows(
            source, {}, as_of=datetime(2026, 6, 1, tzinfo=ZoneInfo("UTC")), lookback=timedelta(hours=24),
            source_timezone="Australia/Perth", warehouse_dialect=dialect, full_refresh=False,
        )  # fmt: skip
        by_partition = {p.value: p.time_semantics for p in source.watermark_partitions()}
        for window in windows:
            assert window.time_zone == expected[by_partition[window.partition]], (source.name, window)
