"""Alembic environment: resolves the warehouse from the PMW_* settings.

Online, it connects (starting the embedded server when no URL is configured), takes the migration
lock inside the migration transaction, and runs the revisions. Offline (``--sql``), it writes a
script for the dialect asked for (``-x dialect=mssql`` or ``pmw upgrade --sql --dialect mssql``),
with the batch separators and the lock a DBA needs to run it with ``sqlcmd -b`` or ``psql``.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import MetaData

from flows import database
from flows.settings import load as load_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
target_metadata = MetaData(naming_convention=database.NAMING_CONVENTION)

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
        impl.static_output(database.migration_lock_sql(dialect))
        if dialect == "mssql":
            impl.static_output("GO")
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migration against the configured warehouse, holding the migration lock."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    engine = database.create_engine(database.warehouse_url(load_settings()))
    try:
        with engine.connect() as conn:
            _run_on(conn)
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
