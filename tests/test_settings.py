"""Settings precedence (environment > .env > default), the founding WAREHOUSE_DB, and bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from flows import database
from flows.cli import main
from flows.settings import Settings


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
    ("variable", "value", "message"),
    [
        ("PMW_FISCAL_YEAR_START_MONTH", "13", "allowed: a month number from 1 to 12"),
        ("PMW_BUSINESS_TIMEZONE", "Mars/Olympus", "is not an IANA zone name"),
        ("PMW_LOG_LEVEL", "LOUD", "allowed: DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("WAREHOUSE_DB", 'x"; DROP', "is not a usable database name"),
    ],
)
def test_bad_values_are_refused_with_what_is_allowed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        Settings()
    assert main(["config"]) == 2
    assert message in capsys.readouterr().err


def test_unsupported_database_kind_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMW_WAREHOUSE_URL", "mysql://u:p@h/db")
    with pytest.raises(Exception, match="allowed: postgresql or mssql"):
        database.warehouse_url(Settings())
