"""Settings precedence (environment > .env > default), the founding WAREHOUSE_DB, and bad values."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from pydantic import ValidationError

from flows import database
from flows.cli import main
from flows.errors import ConfigurationError, InvalidSettings
from flows.settings import Settings, describe, load


def test_defaults() -> None:
    settings = Settings()
    assert settings.warehouse_url is None and settings.source_url is None
    assert settings.warehouse_db == "ProjectManagement"
    assert settings.business_timezone == "Australia/Sydney"
    assert settings.fiscal_year_start_month == 7
    assert settings.log_level == "INFO"


def test_dotenv_overrides_default_and_environment_overrides_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        "PMW_FISCAL_YEAR_START_MONTH=1\nPMW_BUSINESS_TIMEZONE=Australia/Perth\nPMW_LOG_LEVEL=debug\n"
    )
    from_file = Settings()
    assert (from_file.fiscal_year_start_month, from_file.business_timezone, from_file.log_level) == (
        1, "Australia/Perth", "DEBUG",
    )  # fmt: skip
    monkeypatch.setenv("PMW_FISCAL_YEAR_START_MONTH", "4")
    from_env = Settings()
    assert from_env.fiscal_year_start_month == 4  # environment wins
    assert from_env.business_timezone == "Australia/Perth"  # .env still fills the rest


def test_founding_warehouse_db_variable_keeps_working(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("WAREHOUSE_DB=FromDotenv\n")
    assert Settings().warehouse_db == "FromDotenv"
    monkeypatch.setenv("WAREHOUSE_DB", "Analytics")
    settings = Settings()
    assert settings.warehouse_db == "Analytics" and settings.warehouse_db_explicit
    monkeypatch.setenv("PMW_WAREHOUSE_URL", "postgresql+psycopg://etl:pw@dbhost:5432/Other")
    assert database.warehouse_url(Settings()).database == "Analytics"  # names the database on that server


def test_url_database_is_kept_when_warehouse_db_is_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMW_WAREHOUSE_URL", "mssql+pyodbc://etl:pw@sqlhost/ProjectManagementDW?driver=X")
    url = database.warehouse_url(Settings())
    assert url.database == "ProjectManagementDW" and url.get_backend_name() == "mssql"
    assert database.source_url(Settings()) == url  # the source defaults to the warehouse database


@pytest.mark.parametrize(
    ("variable", "value", "allowed", "default"),
    [
        ("PMW_LOOKBACK_HOURS", "-5", "a number >= 0", "24.0"),
        ("PMW_MAX_DELETE_SHARE", "25", "a number from 0 to 1", "0.25"),
        ("PMW_QUALITY_CHECK_TIMEOUT_SECONDS", "soon", "a number > 0 and <= 3600", "60"),
        ("PMW_FISCAL_YEAR_START_MONTH", "13", "a whole number from 1 to 12", "7"),
        ("PMW_CALENDAR_START", "someday", "a date such as 2000-01-01", "2000-01-01"),
        ("PMW_BUSINESS_TIMEZONE", "Mars/Olympus", "an IANA time zone name such as 'Australia/Sydney' or 'UTC', "
         "or a Windows one such as 'AUS Eastern Standard Time'", "Australia/Sydney"),
        ("PMW_LOG_LEVEL", "LOUD", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL (any case)", "INFO"),
        ("WAREHOUSE_DB", 'x"; DROP', "a database name of 1-63 characters without quotes, slashes or semicolons",
         "ProjectManagement"),
        ("PMW_WAREHOUSE_DB", "a/b", "a database name of 1-63 characters without quotes, slashes or semicolons",
         "ProjectManagement"),
    ],
)  # fmt: skip
def test_a_bad_value_is_refused_naming_its_variable_value_bounds_and_fix(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    allowed: str,
    default: str,
) -> None:
    monkeypatch.setenv(variable, value)
    expected = (
        f"setting {variable} has the value {value!r}; allowed: {allowed}. Set it to an allowed value in the "
        f"environment or .env, or remove it to use the default, {default}."
    )
    with pytest.raises(ConfigurationError) as raised:  # what a flow run shows, as InvalidSettings
        load()
    assert isinstance(raised.value, InvalidSettings)
    assert str(raised.value) == f"invalid configuration: {expected}"
    assert str(pickle.loads(pickle.dumps(raised.value))) == str(raised.value)  # Prefect may store it
    assert main(["status"]) == 2
    assert capsys.readouterr().err == f"pmw: invalid configuration: {expected}\n"


def test_several_bad_values_are_each_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMW_LOOKBACK_HOURS", "-5")
    monkeypatch.setenv("PMW_MAX_DELETE_SHARE", "25")
    with pytest.raises(InvalidSettings) as raised:
        load()
    assert set(raised.value.problems) == {"lookback_hours", "max_delete_share"}
    lines = str(raised.value).splitlines()
    assert lines[0] == "invalid configuration:"
    assert lines[1].startswith("  setting PMW_LOOKBACK_HOURS has the value '-5'")
    assert lines[2].startswith("  setting PMW_MAX_DELETE_SHARE has the value '25'")


def test_a_url_setting_error_never_shows_the_value() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(warehouse_url=["postgresql+psycopg://etl:Zq9-secret@dbhost/warehouse"])
    problem = describe(raised.value)["warehouse_url"]
    assert problem.startswith("setting PMW_WAREHOUSE_URL has the value '<hidden>'; allowed: a valid string.")
    assert "Zq9-secret" not in problem and "dbhost" not in problem


def test_config_shows_every_setting_and_marks_the_invalid_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PMW_LOOKBACK_HOURS", "-5")
    monkeypatch.setenv("PMW_CALENDAR_YEARS_AHEAD", "7")
    monkeypatch.setenv("PMW_WAREHOUSE_URL", "postgresql+psycopg://etl:Zq9-secret@dbhost/warehouse")
    assert main(["config"]) == 2
    shown = capsys.readouterr()
    lines = {line.split()[0]: line for line in shown.out.splitlines()}
    assert set(lines) == set(Settings.model_fields)
    assert lines["calendar_years_ahead"].split() == ["calendar_years_ahead", "7"]  # valid: its value
    assert lines["warehouse_url"].split() == ["warehouse_url", "postgresql+psycopg://etl:***@dbhost/warehouse"]
    assert lines["source_url"].split(maxsplit=1) == ["source_url", "(the warehouse database)"]
    invalid = "24.0  <- INVALID, the default is shown: setting PMW_LOOKBACK_HOURS has the value '-5'; allowed: "
    assert lines["lookback_hours"].split(maxsplit=1)[1].startswith(invalid + "a number >= 0.")
    assert "Zq9-secret" not in shown.out + shown.err
    assert shown.err.startswith("pmw: invalid configuration: setting PMW_LOOKBACK_HOURS has the value '-5'")


def test_unsupported_database_kind_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMW_WAREHOUSE_URL", "mysql://u:p@h/db")
    with pytest.raises(Exception, match="allowed: postgresql or mssql"):
        database.warehouse_url(Settings())


def test_load_reads_again_whenever_what_it_reads_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task of a run asks for the settings: load() keeps what it read while the working directory, the
    variables and .env are unchanged, and reads again as soon as one of them changes."""
    monkeypatch.setenv("PMW_HOME", "relative-home")
    first = load()
    assert load() is first
    monkeypatch.setenv("PMW_FISCAL_YEAR_START_MONTH", "4")
    assert load().fiscal_year_start_month == 4
    (tmp_path / ".env").write_text("PMW_LOG_LEVEL=debug\n")
    assert load().log_level == "DEBUG"
    (tmp_path / ".env").write_text("PMW_LOG_LEVEL=error\n")  # the same size, other bytes
    assert load().log_level == "ERROR"
    monkeypatch.setenv("warehouse_db", "Lower")  # variables are read in any case
    assert load().warehouse_db == "Lower"
    monkeypatch.setenv("PMW_FISCAL_YEAR_START_MONTH", "13")
    with pytest.raises(InvalidSettings, match="PMW_FISCAL_YEAR_START_MONTH"):
        load()  # never the settings read before the bad value
    monkeypatch.delenv("PMW_FISCAL_YEAR_START_MONTH")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no .env here, and a relative PMW_HOME means another directory
    assert load().log_level == "INFO" and load().home_path == (elsewhere / "relative-home").resolve()
