"""Database access: URLs, engines, dialect dispatch and the naming convention.

Everything that decides *which* database is used lives here, so the CLI, Alembic's ``env.py`` and
the flows resolve URLs the same way: an explicit ``PMW_WAREHOUSE_URL`` wins; otherwise the embedded
server is started (or attached to) and its ``WAREHOUSE_DB`` database created on first use.
"""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from flows import embedded
from flows.errors import ConfigurationError
from flows.redaction import parse_url, redact_url, register_url
from flows.settings import Settings

__all__ = ["redact_url"]  # the one redaction, re-exported where URLs are made

# One naming convention for every constraint and index, so names are predictable in both dialects.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SUPPORTED_DIALECTS = ("postgresql", "mssql")
PROCS_DIR = Path(__file__).resolve().parent.parent / "procs"

# Advisory-lock names shared by migrations and flow runs (PostgreSQL hashes them to a bigint key).
MIGRATION_LOCK = "pmw:migrations"
RUN_LOCK = "pmw:run"


def _parse(setting: str, secret: str) -> URL:
    register_url(secret)  # before anything can fail and print it
    try:
        return parse_url(secret)
    except Exception as exc:
        # The value may hold a password: name the setting, never echo the value.
        raise ConfigurationError(
            setting,
            "<hidden>",
            "a SQLAlchemy URL such as postgresql+psycopg://user:pass@host/db or mssql+pyodbc://...",
            "Fix the variable in the environment or .env.",
        ) from exc


def warehouse_url(settings: Settings) -> URL:
    """URL of the warehouse database, starting the embedded server when none is configured."""
    if settings.warehouse_url is not None:
        url = _parse("PMW_WAREHOUSE_URL", settings.warehouse_url.get_secret_value())
        if settings.warehouse_db_explicit or not url.database:
            url = url.set(database=settings.warehouse_db)
        _check_dialect("PMW_WAREHOUSE_URL", url)
        return url
    server = embedded.ensure_running(settings.home_path)
    ensure_database(make_url(server.url("postgres")), settings.warehouse_db)
    return make_url(server.url(settings.warehouse_db))


def source_url(settings: Settings) -> URL:
    """URL of the operational database; by default the warehouse database itself."""
    if settings.source_url is None:
        return warehouse_url(settings)
    url = _parse("PMW_SOURCE_URL", settings.source_url.get_secret_value())
    _check_dialect("PMW_SOURCE_URL", url)
    return url


def _check_dialect(setting: str, url: URL) -> None:
    if url.get_backend_name() not in SUPPORTED_DIALECTS:
        raise ConfigurationError(
            setting,
            url.get_backend_name(),
            " or ".join(SUPPORTED_DIALECTS),
            "Point the URL at PostgreSQL (postgresql+psycopg://) or SQL Server (mssql+pyodbc://).",
        )


# Session settings every connection of ours pins, whatever the server, database, role or PGOPTIONS say: psycopg
# parses dates and intervals only in these styles (a warn check's timestamp sample crashed the checks step under
# DateStyle 'SQL, DMY'), and unqualified names (alembic_version) must not resolve in dim first.
PINNED_SESSION = {"DateStyle": "ISO, MDY", "IntervalStyle": "postgres", "search_path": "public"}


def create_engine(url: URL, *, setting: str = "PMW_WAREHOUSE_URL / PMW_SOURCE_URL", **kwargs: object) -> Engine:
    """Engine with the project's defaults (pre-ping, no SQL echo: statements may hold data, pinned session);
    ``setting`` names where the URL came from, for the error when SQL Server's driver is missing."""
    if url.get_backend_name() == "mssql":
        _require_odbc(setting)
    engine = sa.create_engine(url, pool_pre_ping=True, **kwargs)  # type: ignore[arg-type]
    if engine.dialect.name == "postgresql":
        sa.event.listen(engine, "connect", _pin_session)
    return engine


def _require_odbc(setting: str) -> None:
    """pyodbc's wheel installs anywhere, but it needs unixODBC and Microsoft's driver, which are system installs."""
    try:
        import pyodbc  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            setting,
            "a SQL Server URL (mssql+pyodbc)",
            "a URL whose driver is installed",
            f"SQL Server is reached through ODBC, and this machine cannot load it ({exc}). Install unixODBC and "
            "Microsoft's ODBC Driver 18 for SQL Server (Debian: apt install unixodbc, then msodbcsql18 from "
            "Microsoft's repository), or point the URL at PostgreSQL.",
        ) from exc


def _pin_session(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    calls = ", ".join("set_config(%s, %s, false)" for _ in PINNED_SESSION)
    cursor.execute(f"SELECT {calls}", [part for setting in PINNED_SESSION.items() for part in setting])
    cursor.close()
    if not getattr(dbapi_connection, "autocommit", False):
        dbapi_connection.commit()  # type: ignore[attr-defined]


def ensure_database(admin_url: URL, name: str) -> None:
    """Create database ``name`` on a PostgreSQL server if it does not exist yet.

    Serialised with an advisory lock: two pmw processes starting at once must not both try.
    """
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT pg_advisory_lock(hashtext('pmw:create-database'))")
        try:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if not exists:
                quoted = conn.dialect.identifier_preparer.quote_identifier(name)
                conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
        finally:
            conn.exec_driver_sql("SELECT pg_advisory_unlock(hashtext('pmw:create-database'))")
    engine.dispose()


def drop_database(admin_url: URL, name: str) -> None:
    """Drop database ``name`` on a PostgreSQL server, disconnecting its sessions (tests, benchmarks)."""
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        quoted = conn.dialect.identifier_preparer.quote_identifier(name)
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    engine.dispose()


def procs_dir(dialect: str) -> Path:
    """Folder of the editable procedure and view text for ``dialect`` (SQLAlchemy dialect name)."""
    if dialect not in SUPPORTED_DIALECTS:
        raise ConfigurationError("dialect", dialect, " or ".join(SUPPORTED_DIALECTS), "Choose a supported one.")
    return PROCS_DIR / dialect


# --- locks ---------------------------------------------------------------------------------------
# A migration takes the lock exclusively for the whole migration transaction; flow runs (later) take
# it shared, so a run cannot interleave with a deploy. Both dialects release it at commit/rollback.
_LOCK_TIMEOUT_MS = 600_000


def migration_lock_sql(dialect: str) -> str:
    """Statement that takes the migration lock inside the current transaction, for ``dialect``."""
    if dialect == "postgresql":
        return (
            f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT_MS}ms';\n"
            f"SELECT pg_advisory_xact_lock(hashtext('{MIGRATION_LOCK}'));\n"
            "SET LOCAL lock_timeout = 0;"
        )
    if dialect == "mssql":
        # sp_getapplock reports failure through its return code instead of raising: check it.
        return (
            "DECLARE @pmw_lock_result INT;\n"
            f"EXEC @pmw_lock_result = sp_getapplock @Resource = N'{MIGRATION_LOCK}', @LockMode = N'Exclusive', "
            f"@LockOwner = N'Transaction', @LockTimeout = {_LOCK_TIMEOUT_MS};\n"
            "IF @pmw_lock_result < 0\n"
            f"    THROW 50000, N'Another migration holds the lock {MIGRATION_LOCK}; wait for it to finish, "
            "then run the upgrade again.', 1;"
        )
    raise ConfigurationError("dialect", dialect, " or ".join(SUPPORTED_DIALECTS), "Choose a supported one.")


def acquire_migration_lock(conn: sa.Connection) -> None:
    """Take the migration lock on ``conn`` (inside its transaction), or fail with a clear message."""
    sql = migration_lock_sql(conn.dialect.name)
    try:
        if conn.dialect.name == "postgresql":
            for statement in sql.split(";\n"):
                conn.exec_driver_sql(statement.rstrip(";"))
        else:
            conn.exec_driver_sql(sql)
    except sa.exc.DBAPIError as exc:
        from flows.errors import MigrationError

        raise MigrationError(
            f"could not take the migration lock {MIGRATION_LOCK!r} within {_LOCK_TIMEOUT_MS // 1000} s: "
            "another deploy is migrating this warehouse, or a warehouse run is in progress (a run holds the lock "
            "shared). Wait for it to finish (`pmw status`), then run the upgrade again."
        ) from exc


def try_run_lock(conn: sa.Connection) -> bool:
    """Take the pipeline's run lock for the life of ``conn``'s session, without waiting.

    Held on a dedicated connection for the whole run; the database releases it when the session
    ends, including when the process running it is killed.
    """
    if conn.dialect.name == "postgresql":
        return bool(conn.exec_driver_sql(f"SELECT pg_try_advisory_lock(hashtext('{RUN_LOCK}'))").scalar())
    result = conn.exec_driver_sql(
        "DECLARE @result INT; EXEC @result = sp_getapplock @Resource = N'" + RUN_LOCK + "', "
        "@LockMode = N'Exclusive', @LockOwner = N'Session', @LockTimeout = 0; SELECT @result"
    ).scalar()
    return result is not None and int(result) >= 0


def try_shared_migration_lock(conn: sa.Connection, wait_seconds: float) -> bool:
    """Hold the migration lock shared for the life of ``conn``'s session, waiting up to ``wait_seconds``.

    A run holds it so that no migration changes the warehouse under it, and so that a run started while
    a migration holds it (exclusively) waits for the migration instead of reading a half-built schema.
    """
    if conn.dialect.name == "postgresql":
        deadline = time.monotonic() + wait_seconds
        while True:
            sql = f"SELECT pg_try_advisory_lock_shared(hashtext('{MIGRATION_LOCK}'))"
            if conn.exec_driver_sql(sql).scalar():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)
    result = conn.exec_driver_sql(
        "DECLARE @result INT; EXEC @result = sp_getapplock @Resource = N'" + MIGRATION_LOCK + "', "
        f"@LockMode = N'Shared', @LockOwner = N'Session', @LockTimeout = {int(wait_seconds * 1000)}; SELECT @result"
    ).scalar()
    return result is not None and int(result) >= 0


def release_run_lock(conn: sa.Connection) -> None:
    """Release the run lock (and the shared migration lock) and close ``conn``; a pooled connection must not
    keep either alive."""
    try:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock(hashtext('{RUN_LOCK}'))")
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock_shared(hashtext('{MIGRATION_LOCK}'))")
        else:
            conn.exec_driver_sql(f"EXEC sp_releaseapplock @Resource = N'{RUN_LOCK}', @LockOwner = N'Session'")
            conn.exec_driver_sql(
                f"IF APPLOCK_MODE('public', N'{MIGRATION_LOCK}', 'Session') <> 'NoLock' "
                f"EXEC sp_releaseapplock @Resource = N'{MIGRATION_LOCK}', @LockOwner = N'Session'"
            )
        conn.commit()
    except sa.exc.DBAPIError:
        conn.invalidate()  # closing the session releases the lock for certain
    finally:
        conn.close()


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: a lost connection, a deadlock, a serialization failure."""
    from flows.errors import SourceUnavailable

    if isinstance(exc, SourceUnavailable) or getattr(exc, "transient", False):  # redaction.ScrubbedError keeps it
        return True
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if lost_lock_conflict(exc):
        return True
    orig = driver_error(exc)
    try:
        import psycopg
        from psycopg import errors as pg_errors

        if isinstance(orig, psycopg.OperationalError) and not isinstance(orig, pg_errors.QueryCanceled):
            return True
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    return _odbc_state(orig) in {"08S01", "08001"}  # pyodbc: communication link failure


def lost_lock_conflict(exc: BaseException) -> bool:
    """True when the database chose this transaction as a deadlock's victim or failed it on a serialization
    conflict: it was rolled back whole, and the same work run again normally succeeds."""
    orig = driver_error(exc)
    try:
        from psycopg import errors as pg_errors

        if isinstance(orig, pg_errors.SerializationFailure | pg_errors.DeadlockDetected):
            return True
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    # pyodbc reports SQL Server's deadlock victim (error 1205) as SQLSTATE 40001
    return _odbc_state(orig) == "40001" or (_odbc_state(orig) != "" and "(1205)" in str(orig))


def driver_error(exc: BaseException) -> BaseException:
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        return exc.orig
    return exc


def _odbc_state(exc: BaseException) -> str:
    """The SQLSTATE pyodbc puts first in an error's args ('' for other errors)."""
    args = getattr(exc, "args", None)
    return str(args[0]) if args and isinstance(args[0], str) and len(args[0]) == 5 else ""


def set_transaction_setting(conn: sa.Connection, name: str, value: object) -> None:
    """Give the procedures called next in this transaction a setting they read by name.

    PostgreSQL: a custom parameter local to the transaction (``current_setting(name, true)``);
    SQL Server: the session context (``SESSION_CONTEXT(N'name')``), set again before every call.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT set_config(:name, :value, true)"), {"name": name, "value": str(value)})
    else:
        conn.execute(sa.text("EXEC sys.sp_set_session_context @key = :name, @value = :value"),
                     {"name": name, "value": str(value)})  # fmt: skip


def call_procedure(conn: sa.Connection, qualified_name: str, arguments: dict[str, object]) -> dict[str, int]:
    """Call a warehouse procedure and return the row counts it reports.

    Arguments are passed by name in both dialects, so a procedure's parameter order is its own business.
    PostgreSQL procedures report counts through INOUT parameters (CALL returns them as one row);
    SQL Server procedures end with a one-row result set of the same columns.
    """
    names = list(arguments)
    if conn.dialect.name == "postgresql":
        statement = f"CALL {qualified_name}({', '.join(f'{n} => :{n}' for n in names)})"
    else:
        statement = f"EXEC {qualified_name} {', '.join(f'@{n} = :{n}' for n in names)}"
    row = conn.execute(sa.text(statement), arguments).mappings().first()
    return {key: int(value or 0) for key, value in (row or {}).items()}


_ENGINES: dict[str, Engine] = {}


def dispose_pooled_engines() -> None:
    """Close every pooled engine's sessions and forget them (a database must have none to be dropped, and a
    process that points the settings at another warehouse must not reuse the previous one's)."""
    for pooled in _ENGINES.values():
        pooled.dispose()
    _ENGINES.clear()


def engine_for(url: URL) -> Engine:
    """One pooled engine per URL for the life of the process (flow tasks share them)."""
    key = url.render_as_string(hide_password=False)
    if key not in _ENGINES:
        _ENGINES[key] = create_engine(url)
    return _ENGINES[key]
