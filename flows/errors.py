"""The project's exceptions: one base class and a few subclasses that carry data.

Every message says what failed, the offending value, what is allowed, and what to do next.
Driver errors are wrapped with ``raise ... from`` so the cause stays attached.
"""

from __future__ import annotations


class WarehouseError(Exception):
    """Base class for every error pm-warehouse raises on purpose."""


class ConfigurationError(WarehouseError):
    """A setting has a value that cannot work."""

    def __init__(self, setting: str, value: object, allowed: str, hint: str) -> None:
        self.setting = setting
        self.value = value
        super().__init__(f"setting {setting} has the value {value!r}; allowed: {allowed}. {hint}")


class EmbeddedServerError(WarehouseError):
    """The embedded PostgreSQL server could not be started, found or stopped."""


class PrefectServerError(WarehouseError):
    """The local Prefect server could not be started or stopped."""


class SourceError(WarehouseError):
    """The operational (source) database is missing, unreachable or not as expected."""


class SourceUnavailable(SourceError):
    """The source database cannot be reached (down, wrong address): transient, so a task retries it."""

    def __init__(self, where: str, cause: BaseException) -> None:
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        super().__init__(
            f"the source database at {where} could not be reached: {reason}. Check that it is running and that "
            "PMW_SOURCE_URL points at it; this run loaded nothing from it and moved no watermark, so the next "
            "run picks up where the last successful one left off."
        )


class MigrationError(WarehouseError):
    """A schema migration cannot be applied or generated as asked."""


class MigrationInProgress(MigrationError):
    """A run found the warehouse being migrated, or not at the code's revision: it wrote nothing."""


class QualityCheckError(WarehouseError):
    """A data-quality check is declared in a way that cannot run."""


class QualityGateFailed(WarehouseError):
    """A run loaded its data but a quality check of severity error failed: the run is marked failed."""


class AsOfBehind(WarehouseError):
    """A run's as-of instant is earlier than the last published run's: refused before anything is read."""

    def __init__(self, as_of: object, latest: object) -> None:
        self.as_of = as_of
        self.latest = latest
        super().__init__(
            f"the run's as-of {as_of} is earlier than the last published run's ({latest}); a run moves the "
            "warehouse forward, so this one stopped before reading anything. To recompute past days, run at "
            "the current as-of with a backfill (`pmw run --backfill-from YYYY-MM-DD`, flow parameter "
            "backfill_from); to really run at an earlier as-of, ask for it with `pmw run --allow-earlier-as-of` "
            "(flow parameter allow_earlier_as_of)."
        )


class InvalidSettings(ConfigurationError):
    """The settings could not be read. ``problems`` maps each offending field to what is wrong with it,
    as one sentence naming its environment variable, its value, what is allowed and what to do."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        self.setting = ", ".join(problems)
        self.value = None
        lines = list(problems.values())
        one = len(lines) == 1
        WarehouseError.__init__(self, "invalid configuration:" + (" " if one else "\n  ") + "\n  ".join(lines))

    def __reduce__(self) -> tuple[type[InvalidSettings], tuple[dict[str, str]]]:
        return type(self), (self.problems,)  # picklable, for Prefect's stored states
