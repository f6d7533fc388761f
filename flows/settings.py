"""One settings object for the whole project.

Precedence, highest first: environment variables, then a ``.env`` file in the working directory,
then the defaults below. Every variable has the ``PMW_`` prefix, except ``WAREHOUSE_DB`` from the
founding design, which keeps working. Connection URLs are secrets: they are held as ``SecretStr``
and only ever shown through :func:`flows.database.redact_url`.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """Configuration of pm-warehouse, read from the environment and ``.env``."""

    model_config = SettingsConfigDict(
        env_prefix="PMW_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    warehouse_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the warehouse database; unset means the embedded PostgreSQL server.",
    )
    source_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the operational database; unset means the warehouse database.",
    )
    warehouse_db: str = Field(
        default="ProjectManagement",
        validation_alias=AliasChoices("PMW_WAREHOUSE_DB", "WAREHOUSE_DB"),
        description="Database name on the configured server (founding design's WAREHOUSE_DB).",
    )
    home: Path = Field(default=Path(".pmw"), description="Data directory (embedded server, logs).")
    log_level: str = Field(default="INFO", description="Python log level.")
    business_timezone: str = Field(default="Australia/Sydney", description="IANA zone of local dates.")
    source_timezone: str = Field(
        default="Australia/Sydney",
        description="IANA zone of the source server's local (offset-less, non-UTC) timestamps.",
    )
    fiscal_year_start_month: int = Field(default=7, description="Month (1-12) in which the fiscal year starts.")
    lookback_hours: float = Field(
        default=24.0,
        ge=0,
        description="How far before each cursor watermark an incremental extract starts again, to catch "
        "rows committed late with older change times.",
    )
    calendar_start: date = Field(default=date(2000, 1, 1), description="First day of the date dimension.")
    calendar_years_ahead: int = Field(default=5, ge=0, le=100, description="Years past the as-of date to load.")
    migration_wait_seconds: float = Field(
        default=60,
        ge=0,
        le=3600,
        description="How long a run started while a migration holds the warehouse waits for it before it "
        "stops, having written nothing.",
    )
    quarantine_max_share: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="The largest share (0-1) of one extract that may be quarantined as bad input while the run "
        "goes on; more fails the pull, nothing loaded.",
    )
    max_delete_share: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Circuit breaker: the largest share (0-1) of a dimension's live rows that one run may close "
        "as deleted at the source (a full compare that no longer finds them). More stops the run, nothing "
        "written, until it is rerun with force_deletes (pmw run --force-deletes).",
    )
    review_issue_window_days: int = Field(
        default=14,
        ge=1,
        le=366,
        description="Length of a review's window in days, ending on its date (issued, else due, else planned): "
        "the review <-> issue bridge links the issues of its project opened or closed within it.",
    )
    quality_checks: Path | None = Field(
        default=None,
        description="A TOML file of your own data-quality checks, added to (or overriding by name) the built-in "
        "ones in flows/checks.toml.",
    )

    @field_validator("warehouse_db")
    @classmethod
    def _check_database_name(cls, value: str) -> str:
        if not value or len(value) > 63 or any(ch in value for ch in "\"'\\/\x00;"):
            raise ValueError(
                f"WAREHOUSE_DB={value!r} is not a usable database name; use 1-63 characters without "
                "quotes, slashes or semicolons"
            )
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"PMW_LOG_LEVEL={value!r}; allowed: {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("business_timezone", "source_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"time zone {value!r} is not an IANA zone name; use one like 'Australia/Sydney' or 'UTC'"
            ) from exc
        return value

    @field_validator("fiscal_year_start_month")
    @classmethod
    def _check_month(cls, value: int) -> int:
        if not 1 <= value <= 12:
            raise ValueError(f"PMW_FISCAL_YEAR_START_MONTH={value}; allowed: a month number from 1 to 12")
        return value

    @property
    def warehouse_db_explicit(self) -> bool:
        """True when WAREHOUSE_DB was set by the user rather than left at its default."""
        return "warehouse_db" in self.model_fields_set

    @property
    def home_path(self) -> Path:
        """The data directory as an absolute path."""
        return self.home.expanduser().resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
