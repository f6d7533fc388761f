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


class SourceError(WarehouseError):
    """The operational (source) database is missing, unreachable or not as expected."""


class MigrationError(WarehouseError):
    """A schema migration cannot be applied or generated as asked."""


class QualityCheckError(WarehouseError):
    """A data-quality check is declared in a way that cannot run."""


class QualityGateFailed(WarehouseError):
    """A run loaded its data but a quality check of severity error failed: the run is marked failed."""
