"""One settings object for the whole project.

Precedence, highest first: environment variables, then a ``.env`` file in the working directory,
then the defaults below. Every variable has the ``PMW_`` prefix, except ``WAREHOUSE_DB`` from the
founding design, which keeps working. Connection URLs are secrets: they are held as ``SecretStr``
and only ever shown through :func:`flows.redaction.redact_url`; reading them registers their
secrets with :mod:`flows.redaction`, which hides them in every message and log line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from flows import time_zones
from flows.errors import ConfigurationError, InvalidSettings
from flows.redaction import register_url

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
    business_timezone: str = Field(
        default="Australia/Sydney", description="IANA zone of local dates (a Windows name is read as its IANA zone)."
    )
    source_timezone: str = Field(
        default="Australia/Sydney",
        description="IANA zone of the source server's local (offset-less, non-UTC) timestamps (a Windows name "
        "is read as its IANA zone).",
    )
    fiscal_year_start_month: int = Field(default=7, ge=1, le=12, description="Month in which the fiscal year starts.")
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
    max_delete_share_min_rows: int = Field(
        default=20,
        ge=1,
        le=1_000_000_000,
        description="Circuit breaker: the live rows a dimension needs before max_delete_share applies to it. A "
        "smaller one (a handful of clients, 8 project types) may lose any share of its rows in one run, but not "
        "all of them: a table that had rows and comes back empty still stops the run.",
    )
    key_reconciliation_every_runs: int = Field(
        default=1,
        ge=1,
        le=10_000,
        description="How often a cursor source's whole key set is compared with the dimension's live keys, to "
        "close the keys the source no longer has (rows removed, issues moved to another tracker project): on "
        "every run (1), or on every n-th load of that source; counted from the last load that compared, in "
        "ctl.run_step_meaning (key_set_read, key_set_runs_to_go, vanished_at_source).",
    )
    review_issue_window_days: int = Field(
        default=14,
        ge=1,
        le=366,
        description="Length of a review's window in days, ending on its date (issued, else due, else planned): "
        "the review <-> issue bridge links the issues of its project opened or closed within it.",
    )
    quality_check_timeout_seconds: float = Field(
        default=60,
        gt=0,
        le=3600,
        description="Statement timeout of each data-quality check's query: a check that runs longer is recorded "
        "as an error instead of holding the run.",
    )
    quarantine_retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="How long ctl.quarantine keeps a rejected row's content (personal data included); after it "
        "only the reason, source, key and run remain.",
    )
    quality_checks: Path | None = Field(
        default=None,
        description="A TOML file of your own data-quality checks, added to (or overriding by name) the built-in "
        "ones in flows/checks.toml.",
    )

    # The validators say only what is allowed: load() adds the variable, the value and what to do.
    @field_validator("warehouse_db")
    @classmethod
    def _check_database_name(cls, value: str) -> str:
        if not value or len(value) > 63 or any(ch in value for ch in "\"'\\/\x00;"):
            raise ValueError("a database name of 1-63 characters without quotes, slashes or semicolons")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"one of {', '.join(LOG_LEVELS)} (any case)")
        return level

    @field_validator("business_timezone", "source_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        return time_zones.iana_name(value)  # a Windows name is read as its IANA zone

    def model_post_init(self, context: object, /) -> None:
        # every process reads its settings before it connects: from here on its logs and errors hide them
        for url in (self.warehouse_url, self.source_url):
            if url is not None:
                register_url(url.get_secret_value())

    @property
    def warehouse_db_explicit(self) -> bool:
        """True when WAREHOUSE_DB was set by the user rather than left at its default."""
        return "warehouse_db" in self.model_fields_set

    @property
    def home_path(self) -> Path:
        """The data directory as an absolute path."""
        return self.home.expanduser().resolve()


# --- reading the settings with errors a person can act on -----------------------------------------

HIDDEN = "<hidden>"  # shown instead of the value of a *_url setting: URLs hold passwords
_KINDS: dict[object, str] = {int: "a whole number", float: "a number", date: "a date such as 2000-01-01"}
_LIMITS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def load() -> Settings:
    """Read the settings, as ``Settings()`` does, but fail with a message a person can act on.

    Raises:
        InvalidSettings: one sentence per bad value, naming its environment variable, the value (never a
            URL's), what is allowed and what to do.
    """
    inputs = _inputs()
    if _last_loaded is not None and _last_loaded[0] == inputs:
        return _last_loaded[1]
    try:
        settings = Settings()
    except ValidationError as exc:
        # from None: the ValidationError's own text echoes every input, URLs with passwords included
        raise InvalidSettings(describe(exc)) from None
    _remember(inputs, settings)
    return settings


# What the settings are read from: the working directory (``.env`` and a relative PMW_HOME are read from
# it), the variables Settings reads, and ``.env``'s bytes. Every task of a run reads the settings; the same
# inputs give the same settings, so a process reads them again only when one of these changed.
_Inputs = tuple[str, tuple[tuple[str, str], ...], bytes | None]
_last_loaded: tuple[_Inputs, Settings] | None = None


def _inputs() -> _Inputs:
    read = [(key.upper(), value) for key, value in os.environ.items() if key.upper().startswith("PMW_")]
    read += [(key.upper(), value) for key, value in os.environ.items() if key.upper() == "WAREHOUSE_DB"]
    try:
        dotenv: bytes | None = Path(".env").read_bytes()
    except OSError:  # none (or unreadable, which Settings() treats the same way)
        dotenv = None
    return os.getcwd(), tuple(sorted(read)), dotenv


def _remember(inputs: _Inputs, settings: Settings) -> None:
    global _last_loaded
    _last_loaded = (inputs, settings)


def describe(exc: ValidationError) -> dict[str, str]:
    """Per offending field, one sentence: its variable, its value, what is allowed and what to do."""
    problems: dict[str, str] = {}
    for error in exc.errors():
        name = _field_name(error["loc"])
        problems.setdefault(name, _sentence(name, error))
    return problems


def with_defaults_for(fields: Iterable[str]) -> Settings:
    """The settings with ``fields`` at their defaults: what the other settings are when those are invalid."""
    defaults = {name: Settings.model_fields[name].default for name in fields if name in Settings.model_fields}
    return Settings(**defaults)


def environment_variable(name: str) -> str:
    """The variable that sets field ``name``: ``PMW_<NAME>``, or for an aliased field the alias in use."""
    aliases = _aliases(Settings.model_fields[name]) if name in Settings.model_fields else []
    if not aliases:
        return f"PMW_{name.upper()}"
    given = {key.upper() for key in os.environ} | {key.upper() for key in dotenv_values(".env")}
    return next((alias for alias in aliases if alias in given), aliases[-1])


def _aliases(field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    return [str(choice).upper() for choice in alias.choices] if isinstance(alias, AliasChoices) else []


def _field_name(loc: tuple[int | str, ...]) -> str:
    key = str(loc[0]) if loc else ""
    for name, field in Settings.model_fields.items():
        if key.lower() == name or key.upper() in _aliases(field):
            return name
    return key


def _sentence(name: str, error: ErrorDetails) -> str:
    field = Settings.model_fields.get(name)
    value = HIDDEN if name.endswith("_url") else error.get("input")
    return str(ConfigurationError(environment_variable(name), value, _allowed(field, error), _what_to_do(field)))


def _allowed(field: FieldInfo | None, error: ErrorDetails) -> str:
    if error["type"] == "value_error":  # the validators above say what they allow
        return str((error.get("ctx") or {}).get("error", error["msg"]))
    kind = _KINDS.get(field.annotation) if field is not None else None
    if field is None or kind is None:
        return error["msg"].removeprefix("Input should be ")
    return f"{kind} {_bounds(field)}".rstrip()


def _bounds(field: FieldInfo) -> str:
    limits = {key: getattr(item, key) for item in field.metadata for key in _LIMITS if hasattr(item, key)}
    if limits.keys() == {"ge", "le"}:
        return f"from {limits['ge']:g} to {limits['le']:g}"
    return " and ".join(f"{_LIMITS[key]} {value:g}" for key, value in limits.items())


def _what_to_do(field: FieldInfo | None) -> str:
    default = "leave it unset" if field is None or field.default is None else f"use the default, {field.default}"
    return f"Set it to an allowed value in the environment or .env, or remove it to {default}."
