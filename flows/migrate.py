"""Schema migrations: the Alembic calls behind `pmw upgrade` and `pmw downgrade`.

The ``migrations`` package (the repository's ``migrations/``, shipped in the wheel as a package of its
own with its revisions and frozen procedure texts) is the single source of DDL. ``alembic.ini`` serves
the `alembic` command in a checkout; pmw, which may run from an installed wheel with no checkout, finds
the package through ``importlib.resources`` and sets the same options (``ALEMBIC_OPTIONS``; a test holds
them equal to the ini's), so `alembic upgrade head` and `pmw upgrade` do exactly the same thing.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from importlib import resources
from pathlib import Path
from typing import TextIO

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from flows.database import SUPPORTED_DIALECTS
from flows.errors import MigrationError

MIGRATIONS_DIR = Path(str(resources.files("migrations")))  # the checkout's folder, or the installed package's
# alembic.ini's [alembic] options that running migrations depends on (its file_template and slug length
# only name new revision files, which `alembic revision` in a checkout writes)
ALEMBIC_OPTIONS = {"script_location": str(MIGRATIONS_DIR), "path_separator": "os", "output_encoding": "utf-8"}


def alembic_config(output: TextIO | None = None, dialect: str | None = None) -> Config:
    """Alembic configuration of the migrations package; ``dialect`` selects the offline script's dialect."""
    config = Config(stdout=output or sys.stdout, output_buffer=output or sys.stdout)
    for option, value in ALEMBIC_OPTIONS.items():
        config.set_main_option(option, value.replace("%", "%%"))
    if dialect is not None:
        if dialect not in SUPPORTED_DIALECTS:
            raise MigrationError(f"--dialect {dialect!r} is not supported; use one of: {', '.join(SUPPORTED_DIALECTS)}")
        config.attributes["dialect"] = dialect
    return config


def upgrade(
    revision: str = "head",
    *,
    sql: bool = False,
    dialect: str | None = None,
    output: TextIO | None = None,
    quiet: bool = False,
) -> None:
    """Upgrade the configured warehouse to ``revision``, or print the script (``sql=True``).

    ``quiet`` keeps Alembic's "Running upgrade" lines out of a command that reports the step itself.
    """
    if dialect is not None and not sql:
        raise MigrationError("--dialect only applies with --sql: online upgrades use the configured warehouse")
    with _quiet("alembic") if quiet else nullcontext():
        command.upgrade(alembic_config(output, dialect), revision, sql=sql)


def downgrade(revision: str, *, sql: bool = False, dialect: str | None = None, output: TextIO | None = None) -> None:
    """Downgrade the configured warehouse to ``revision`` (``base`` removes everything)."""
    if dialect is not None and not sql:
        raise MigrationError("--dialect only applies with --sql: online downgrades use the configured warehouse")
    if sql and ":" not in revision:
        raise MigrationError(f"an offline downgrade needs a range such as head:{revision}")
    command.downgrade(alembic_config(output, dialect), revision, sql=sql)


@functools.cache
def _revisions() -> ScriptDirectory:
    """The revisions shipped with this code, read once per process: they cannot change under it, and reading
    them (some 30 files) is most of what checking a warehouse's revision costs (~0.07 s each time)."""
    return ScriptDirectory.from_config(alembic_config())


def heads() -> list[str]:
    """The head revisions of the migration graph (exactly one in a healthy repository)."""
    return list(_revisions().get_heads())


def current_revision(connection) -> str | None:  # type: ignore[no-untyped-def]
    """Revision the database on ``connection`` is at, or None when it has none."""
    from alembic.runtime.migration import MigrationContext

    with _quiet("alembic.runtime.migration"):  # no "Context impl PostgresqlImpl." line for a mere read
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def require_head(engine: sa.Engine) -> None:
    """Refuse to read a warehouse whose schema is not the one this code expects.

    Raises:
        MigrationError: the warehouse is not initialised, is behind the code's head revision (run
            `pmw upgrade`), or is at a revision this code does not know (migrated by newer code).
    """
    with engine.connect() as conn:
        current = current_revision(conn)
    script = _revisions()
    expected = " or ".join(script.get_heads())
    if current in script.get_heads():
        return
    if current is None:
        raise MigrationError(
            f"the warehouse is not initialised (it has no revision), this code expects {expected}: run `pmw upgrade`"
        )
    if not _is_known(script, current):
        raise MigrationError(
            f"the warehouse is at revision {current}, which this code does not know (newer code migrated it); "
            f"this code expects {expected}: use the code that migrated it, or downgrade with that code first"
        )
    raise MigrationError(f"the warehouse is at revision {current}, this code expects {expected}: run `pmw upgrade`")


def _is_known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False
