"""Alembic environment: resolves the warehouse from the PMW_* settings.

Online, it connects (starting the embedded server when no URL is configured), takes the migration
lock inside the migration transaction, and runs the revisions; a transaction the database rolls back as
a deadlock's victim is run again whole (a few times, with backoff). Offline (``--sql``), it writes a
script for the dialect asked for (``-x dialect=mssql`` or ``pmw upgrade --sql --dialect mssql``),
with the batch separators and the lock a DBA needs to run it with ``sqlcmd -b`` or ``psql``.
"""

from __future__ import annotations

import logging
import time
from logging.config import fileConfig

from alembic import context
from sqlalchemy import MetaData

from flows import database
from flows.settings import load as load_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
target_metadata = MetaData(naming_convention=database.NAMING_CONVENTION)
log = logging.getLogger("pmw.migrate")

# A migration's DDL takes table locks late in one long transaction, so a concurrent session that holds a
# weaker lock on a table and waits for a catalog row the migration changed (PostgreSQL's autovacuum, which
# updates pg_class after it analyzes a table, or a report reading a table a revision alters on SQL Server)
# makes a deadlock the server breaks by rolling one side back. The migration is transactional, so when it
# is the victim nothing of it stayed and running it again is safe.
LOCK_CONFLICT_ATTEMPTS = 4
LOCK_CONFLICT_BACKOFF_S = 0.5  # 0.5, 1, 2 s between attempts

MSSQL_SCRIPT_HEADER = (
    ":on error exit\nSET ANSI_NULLS ON;\nSET QUOTED_IDENTIFIER ON;\nSET XACT_ABORT ON;\nSET NOCOUNT ON;\nGO"
)


def _offline_dialect() -> str:
    asked = config.attributes.get("dialect") or context.get_x_argument(as_dictionary=True).get("dialect")
    if asked:
        return str(asked)
    settings = load_settings()
    if settings.warehouse_url is None:
        return "postgresql"
    return database.warehouse_url(settings).get_backend_name()


def run_migrations_offline() -> None:
    """Write the migration as a SQL script instead of running it."""
    dialect = _offline_dialect()
    if dialect not in database.SUPPORTED_DIALECTS:
        raise SystemExit(f"dialect {dialect!r} is not supported; use one of {database.SUPPORTED_DIALECTS}")
    context.configure(
        dialect_name=dialect,
        target_metadata=target_metadata,
        literal_binds=True,
        # named paramstyle: no %-doubling in PostgreSQL scripts; large types: NVARCHAR(max), not NTEXT.
        dialect_opts={"paramstyle": "named", **({"deprecate_large_types": True} if dialect == "mssql" else {})},
    )
    impl = context.get_context().impl
    if dialect == "mssql":
        impl.static_output(MSSQL_SCRIPT_HEADER)
    with context.begin_transaction():
        # Alembic's mssql output puts no GO after BEGIN TRANSACTION; the lock batch ends with one,
        # so the first CREATE SCHEMA or CREATE PROCEDURE always starts its own batch.
        impl.static_output(database.migration_lock_script(dialect))
        if dialect == "mssql":
            impl.static_output("GO")
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migration against the configured warehouse, holding the migration lock."""
    connection = config.attributes.get("connection")
    if connection is not None:  # the caller owns the connection and its transaction: no retry here
        _run_on(connection)
        return
    engine = database.create_engine(database.warehouse_url(load_settings()))
    try:
        for attempt in range(1, LOCK_CONFLICT_ATTEMPTS + 1):
            try:
                with engine.connect() as conn:
                    _run_on(conn)
                return
            except Exception as exc:
                if attempt == LOCK_CONFLICT_ATTEMPTS or not database.lost_lock_conflict(exc):
                    raise
                delay = LOCK_CONFLICT_BACKOFF_S * 2 ** (attempt - 1)
                log.warning(
                    "the migration was rolled back as a deadlock's victim (%s); nothing of it was kept, "
                    "running it again in %.1f s (attempt %d of %d)",
                    type(database.driver_error(exc)).__name__, delay, attempt + 1, LOCK_CONFLICT_ATTEMPTS,
                )  # fmt: skip
                time.sleep(delay)
    finally:
        engine.dispose()


def _run_on(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=target_metadata, transactional_ddl=True)
    with context.begin_transaction():
        database.acquire_migration_lock(connection)
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
