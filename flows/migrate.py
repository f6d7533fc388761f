"""Schema migrations: the Alembic calls behind `pmw upgrade` and `pmw downgrade`.

The repository's ``alembic.ini`` and ``migrations/`` are the single source of DDL; this module only
points Alembic at them, so `alembic upgrade head` and `pmw upgrade` do exactly the same thing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from flows.database import SUPPORTED_DIALECTS
from flows.errors import MigrationError

REPO_ROOT = Path(__file__).resolve().parent.parent
ALEMBIC_INI = REPO_ROOT / "alembic.ini"


def alembic_config(output: TextIO | None = None, dialect: str | None = None) -> Config:
    """Alembic configuration of this repository; ``dialect`` selects the offline script's dialect."""
    if not ALEMBIC_INI.exists():
        raise MigrationError(
            f"{ALEMBIC_INI} is missing: run pmw from a checkout of the pm-warehouse repository "
            "(installed with `pip install -e .`)"
        )
    config = Config(str(ALEMBIC_INI), stdout=output or sys.stdout, output_buffer=output or sys.stdout)
    if dialect is not None:
        if dialect not in SUPPORTED_DIALECTS:
            raise MigrationError(f"--dialect {dialect!r} is not supported; use one of: {', '.join(SUPPORTED_DIALECTS)}")
        config.attributes["dialect"] = dialect
    return config


def upgrade(
    revision: str = "head", *, sql: bool = False, dialect: str | None = None, output: TextIO | None = None
) -> None:
    """Upgrade the configured warehouse to ``revision``, or print the script (``sql=True``)."""
    if dialect is not None and not sql:
        raise MigrationError("--dialect only applies with --sql: online upgrades use the configured warehouse")
    command.upgrade(alembic_config(output, dialect), revision, sql=sql)


def downgrade(revision: str, *, sql: bool = False, dialect: str | None = None, output: TextIO | None = None) -> None:
    """Downgrade the configured warehouse to ``revision`` (``base`` removes everything)."""
    if dialect is not None and not sql:
        raise MigrationError("--dialect only applies with --sql: online downgrades use the configured warehouse")
    if sql and ":" not in revision:
        raise MigrationError(f"an offline downgrade needs a range such as head:{revision}")
    command.downgrade(alembic_config(output, dialect), revision, sql=sql)


def heads() -> list[str]:
    """The head revisions of the migration graph (exactly one in a healthy repository)."""
    return list(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revision(connection) -> str | None:  # type: ignore[no-untyped-def]
    """Revision the database on ``connection`` is at, or None when it has none."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
