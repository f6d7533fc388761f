"""Database access: URLs, engines, locks, procedure calls and the naming convention (what differs per dialect
is in flows/dialects.py).

Everything that decides *which* database is used lives here, so the CLI, Alembic's ``env.py`` and
the flows resolve URLs the same way: an explicit ``PMW_WAREHOUSE_URL`` wins; otherwise the embedded
server is started (or attached to) and its ``WAREHOUSE_DB`` database created on first use.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from flows import dialects, embedded
from flows.dialects import LOCK_TIMEOUT_MS, MIGRATION_LOCK, RUN_LOCK
from flows.errors import ConfigurationError
from flows.redaction import parse_url, redact_url, register_url
from flows.settings import Settings

__all__ = ["MIGRATION_LOCK", "RUN_LOCK", "redact_url"]  # re-exported: the one redaction, the lock names

# One naming convention for every constraint and index, so names are predictable in both dialects.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SUPPORTED_DIALECTS = dialects.SUPPORTED
PROCS_DIR = Path(__file__).resolve().parent.parent / "procs"


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
    url = make_url(server.url(settings.warehouse_db))
    if url not in _EMBEDDED_DATABASES_SEEN:  # every task of a run asks: one look per process is enough
        ensure_database(make_url(server.url("postgres")), settings.warehouse_db)
        _EMBEDDED_DATABASES_SEEN.add(url)
    return url


# The embedded databases this process has made sure of (a database, once there, stays in its data directory;
# dropping one under a running flow fails its next connection, clearly, either way). Looking each time cost a
# connection per task: 1 s of a 1.5 s run at demo scale.
_EMBEDDED_DATABASES_SEEN: set[URL] = set()


def source_url(settings: Settings, warehouse: URL | None = None) -> URL:
    """URL of the operational database; by default the warehouse database itself (``warehouse``, when the
    caller has resolved it already)."""
    if settings.source_url is None:
        return warehouse or warehouse_url(settings)
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


def create_engine(url: URL, *, setting: str = "PMW_WAREHOUSE_URL / PMW_SOURCE_URL", **kwargs: object) -> Engine:
    """Engine with the project's defaults (pre-ping, no SQL echo: statements may hold data, the dialect's session
    settings); ``setting`` names where the URL came from, for the error when the dialect's driver is missing."""
    dialect = dialects.named(url.get_backend_name())
    dialect.check_driver(setting)
    engine = sa.create_engine(url, pool_pre_ping=True, **kwargs)  # type: ignore[arg-type]
    dialect.configure(engine)
    return engine


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
    return PROCS_DIR / dialects.named(dialect).name


PORTABLE_DIR = PROCS_DIR / "portable"  # <schema>/<object>.sql: one text that serves every dialect


def object_texts(dialect: str) -> dict[str, str]:
    """{``schema.object``: its current text for ``dialect``}: the dialect's own files, and every portable one
    as that dialect creates it (``Dialect.portable_view_sql``)."""
    found = {
        f"{p.parent.name}.{p.stem}": p.read_text(encoding="utf-8") for p in sorted(procs_dir(dialect).glob("*/*.sql"))
    }
    for path in sorted(PORTABLE_DIR.glob("*/*.sql")):
        name = f"{path.parent.name}.{path.stem}"
        if name in found:
            raise ValueError(f"{name} is in both procs/portable and procs/{dialect}: keep one text of it")
        found[name] = dialects.named(dialect).portable_view_sql(path.read_text(encoding="utf-8"))
    return found


# --- locks ---------------------------------------------------------------------------------------
# A migration takes the lock exclusively for the whole migration transaction; flow runs take it shared, so a
# run cannot interleave with a deploy. Both dialects release it at commit/rollback.


def migration_lock_script(dialect: str) -> str:
    """The migration lock's statements as the offline script of ``dialect`` writes them."""
    return ";\n".join(dialects.named(dialect).migration_lock_sql()) + ";"


def acquire_migration_lock(conn: sa.Connection) -> None:
    """Take the migration lock on ``conn`` (inside its transaction), or fail with a clear message."""
    try:
        dialects.of(conn).take_migration_lock(conn)
    except sa.exc.DBAPIError as exc:
        from flows.errors import MigrationError

        raise MigrationError(
            f"could not take the migration lock {MIGRATION_LOCK!r} within {LOCK_TIMEOUT_MS // 1000} s: "
            "another deploy is migrating this warehouse, or a warehouse run is in progress (a run holds the lock "
            "shared). Wait for it to finish (`pmw status`), then run the upgrade again."
        ) from exc


def try_run_lock(conn: sa.Connection) -> bool:
    """Take the pipeline's run lock for the life of ``conn``'s session, without waiting.

    Held on a dedicated connection for the whole run; the database releases it when the session
    ends, including when the process running it is killed.
    """
    return dialects.of(conn).try_run_lock(conn)


def try_shared_migration_lock(conn: sa.Connection, wait_seconds: float) -> bool:
    """Hold the migration lock shared for the life of ``conn``'s session, waiting up to ``wait_seconds``.

    A run holds it so that no migration changes the warehouse under it, and so that a run started while
    a migration holds it (exclusively) waits for the migration instead of reading a half-built schema.
    """
    return dialects.of(conn).try_shared_migration_lock(conn, wait_seconds)


def release_run_lock(conn: sa.Connection) -> None:
    """Release the run lock (and the shared migration lock) and close ``conn``; a pooled connection must not
    keep either alive."""
    try:
        for statement in dialects.of(conn).release_locks_sql():
            conn.exec_driver_sql(statement)
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
    dialects.of(conn).set_transaction_setting(conn, name, value)


def call_procedure(conn: sa.Connection, qualified_name: str, arguments: dict[str, object]) -> dict[str, int]:
    """Call a warehouse procedure and return the row counts it reports.

    Arguments are passed by name in both dialects, so a procedure's parameter order is its own business.
    PostgreSQL procedures report counts through INOUT parameters (CALL returns them as one row);
    SQL Server procedures end with a one-row result set of the same columns.
    """
    statement = dialects.of(conn).call_sql(qualified_name, list(arguments))
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
