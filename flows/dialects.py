"""What PostgreSQL and SQL Server do differently, behind one interface: the rest of ``flows/`` asks ``of(conn)``
for the warehouse's dialect and never compares dialect names.

Two kinds of member:

* SQL builders, named ``*_sql``: pure functions of their arguments that return SQL text (no connection, no
  state), so a test renders every one of them for SQL Server and parses it as T-SQL here, where no SQL
  Server runs (tests/test_dialects.py enumerates them from this class);
* actions on a connection (locks, session settings, bulk inserts, the checks' read-only transaction), each
  made of builders where it sends SQL.

Where one SQL text runs on both (the ``pmw status`` and ``pmw dq`` queries, the quality checks, SQLAlchemy
Core's ``limit``), it is written once where it is used, not here.
"""

from __future__ import annotations

import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from flows import roles, time_zones
from flows.errors import ConfigurationError

log = logging.getLogger(__name__)

# Advisory-lock names shared by migrations and flow runs (PostgreSQL hashes them to a bigint key).
MIGRATION_LOCK = "pmw:migrations"
RUN_LOCK = "pmw:run"
LOCK_TIMEOUT_MS = 600_000  # how long a migration waits for the lock before it fails with a clear message

# Session settings every connection of ours pins, whatever the server, database, role or PGOPTIONS say:
# psycopg parses dates and intervals only in these styles (a warn check's timestamp sample crashed the checks
# step under DateStyle 'SQL, DMY'), and unqualified names (alembic_version) must not resolve in dim first.
PINNED_SESSION = {"DateStyle": "ISO, MDY", "IntervalStyle": "postgres", "search_path": "public"}


class Dialect(ABC):
    """One warehouse database's way of doing what the flows need."""

    name: str  # SQLAlchemy's dialect name: also the procs/ folder of its procedures

    # --- engines and sessions -------------------------------------------------------------------
    def check_driver(self, setting: str) -> None:
        """Fail with what to install when this machine cannot load the dialect's driver (``setting`` named)."""
        return None  # a driver that is a dependency of the package is always there

    def configure(self, engine: sa.Engine) -> None:
        """Install what every connection of ``engine`` needs before its first statement."""
        return None  # nothing, where the server's defaults are what the flows expect

    @abstractmethod
    def transaction_setting_sql(self) -> str:
        """Set a value the procedures called next read by name (binds :name, :value)."""

    def set_transaction_setting(self, conn: sa.Connection, name: str, value: object) -> None:
        conn.execute(sa.text(self.transaction_setting_sql()), {"name": name, "value": str(value)})

    @abstractmethod
    def call_sql(self, procedure: str, parameters: Sequence[str]) -> str:
        """Call ``procedure`` with ``parameters`` bound by name (:name); it returns its counts as one row."""

    # --- locks ------------------------------------------------------------------------------------
    @abstractmethod
    def migration_lock_sql(self) -> list[str]:
        """Statements that take the migration lock exclusively until the transaction ends, or fail."""

    def take_migration_lock(self, conn: sa.Connection) -> None:
        for statement in self.migration_lock_sql():
            conn.exec_driver_sql(statement)

    @abstractmethod
    def try_run_lock(self, conn: sa.Connection) -> bool:
        """Take the run lock for the life of ``conn``'s session, without waiting."""

    @abstractmethod
    def try_shared_migration_lock(self, conn: sa.Connection, wait_seconds: float) -> bool:
        """Hold the migration lock shared for the life of ``conn``'s session, waiting up to ``wait_seconds``."""

    @abstractmethod
    def release_locks_sql(self) -> list[str]:
        """Release the run lock and the shared migration lock of this session."""

    # --- expressions ------------------------------------------------------------------------------
    @abstractmethod
    def text_sql(self, expression: str, length: int) -> str:
        """``expression`` as text of at most ``length`` characters."""

    @abstractmethod
    def literal_sql(self, text: str) -> str:
        """A string literal (Unicode on SQL Server); ``text`` holds no quote."""

    @abstractmethod
    def concat_sql(self, *parts: str) -> str:
        """The text ``parts`` joined (each a text expression; NULL in, NULL out)."""

    @abstractmethod
    def row_hash_sql(self, columns: Sequence[str], alias: str = "s") -> str:
        """A hash of ``columns`` of row ``alias``, equal exactly when every value is equal (NULL to NULL)."""

    @abstractmethod
    def row_json_sql(self, alias: str = "s") -> str:
        """The whole row ``alias`` as JSON text."""

    def not_a_number_sql(self, expression: str) -> str | None:
        """True when the numeric ``expression`` is NaN or an infinity; None where no numeric type holds one."""
        return None

    @abstractmethod
    def minus_seconds_sql(self, expression: str, seconds: int) -> str:
        """The timestamp ``expression`` moved back by ``seconds``."""

    @abstractmethod
    def local_to_utc_sql(self, expression: str, zone: str) -> str:
        """The offset-less local time ``expression`` read in zone ``zone`` (an SQL expression of the database's
        zone name), as an offset-less UTC time."""

    @abstractmethod
    def utc_instant_sql(self, expression: str) -> str:
        """The offset-less UTC time ``expression`` as an instant (a value of a column with a zone)."""

    def zone_name(self, zone: str) -> str:
        """The IANA ``zone`` as this database's ``AT TIME ZONE`` names it (ValueError when it has none)."""
        return zone

    # --- statements -------------------------------------------------------------------------------
    @abstractmethod
    def delete_sql(self, table: str, alias: str, where: str) -> str:
        """Delete the rows of ``table`` (aliased ``alias``) where ``where`` holds."""

    @abstractmethod
    def update_sql(self, table: str, alias: str, assignments: str, where: str) -> str:
        """Update the rows of ``table`` (aliased ``alias``) where ``where`` holds."""

    @abstractmethod
    def delete_counted_sql(self, table: str, alias: str, where: str, column: str | None) -> str:
        """Delete as ``delete_sql`` and return (value of ``column``, rows deleted) per value ('' without one)."""

    @abstractmethod
    def temp_table(self, name: str) -> str:
        """How statements refer to the temporary table ``name``."""

    @abstractmethod
    def create_temp_table_sql(self, name: str, select_list: str, rest: str, *, empty: bool = False) -> str:
        """Create temporary table ``name`` from ``SELECT select_list rest`` (no rows when ``empty``); it lives
        until the transaction ends or ``drop_temp_table_sql``."""

    @abstractmethod
    def drop_temp_table_sql(self, name: str) -> str:
        """Drop temporary table ``name`` if it exists."""

    @property
    @abstractmethod
    def create_or_replace_view(self) -> str:
        """The words that create a view or replace its definition."""

    def portable_view_sql(self, text: str) -> str:
        """A view of procs/portable (one text for every dialect, opening with ``CREATE VIEW``) as this dialect
        creates or replaces it; nothing else of the text changes."""
        opening = re.compile(r"^CREATE VIEW ", re.M)
        if len(opening.findall(text)) != 1:
            raise ValueError("a portable view opens with exactly one line starting 'CREATE VIEW '")
        return opening.sub(f"{self.create_or_replace_view} ", text)

    def refresh_statistics_sql(self, table: str) -> str | None:
        """What to run after every row of ``table`` was replaced, so plans see its new size (None: nothing)."""
        return None

    def summarize_new_ranges_sql(self) -> str | None:
        """What summarizes the block ranges a run added to the warehouse's block-range indexes, before the quality
        checks read the run's rows through them (None: the database has no such indexes)."""
        return None

    # --- bulk movement ----------------------------------------------------------------------------
    @abstractmethod
    def bulk_insert(self, conn: sa.Connection, table: str, columns: list[str], rows: list[tuple[object, ...]]) -> None:
        """Insert ``rows`` into ``table`` (schema-qualified) through the driver's bulk path."""

    counts_rows_per_transaction = False  # whether the database counts each transaction's writes per table

    # --- the quality checks' transaction ------------------------------------------------------------
    @abstractmethod
    def restrict_to_reading(self, conn: sa.Connection, as_role: str | None, timeout_seconds: float) -> None:
        """Make the checks' transaction unable to write: as a role without write grants, time-limited."""

    def end_restriction(self, conn: sa.Connection, as_role: str | None) -> None:
        """Undo what ``restrict_to_reading`` set on the session (the transaction is rolled back after)."""
        return None  # nothing, where it set only what the transaction's end undoes


def _driver_connection(conn: sa.Connection) -> Any:
    raw = conn.connection.driver_connection
    if raw is None:  # pragma: no cover - only for a closed connection
        raise RuntimeError("the warehouse connection is closed")
    return raw


class PostgreSQL(Dialect):
    name = "postgresql"
    create_or_replace_view = "CREATE OR REPLACE VIEW"
    counts_rows_per_transaction = True  # pg_stat_xact_user_tables (flows/table_counts.py)

    def configure(self, engine: sa.Engine) -> None:
        sa.event.listen(engine, "connect", self._pin_session)

    def _pin_session(self, dbapi_connection: Any, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        calls = ", ".join("set_config(%s, %s, false)" for _ in PINNED_SESSION)
        cursor.execute(f"SELECT {calls}", [part for setting in PINNED_SESSION.items() for part in setting])
        cursor.close()
        if not getattr(dbapi_connection, "autocommit", False):
            dbapi_connection.commit()

    def transaction_setting_sql(self) -> str:
        return "SELECT set_config(:name, :value, true)"  # read with current_setting(name, true)

    def call_sql(self, procedure: str, parameters: Sequence[str]) -> str:
        return f"CALL {procedure}({', '.join(f'{n} => :{n}' for n in parameters)})"  # INOUT counts: one row

    def migration_lock_sql(self) -> list[str]:
        return [
            f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'",
            f"SELECT pg_advisory_xact_lock(hashtext('{MIGRATION_LOCK}'))",
            "SET LOCAL lock_timeout = 0",
        ]

    def try_run_lock(self, conn: sa.Connection) -> bool:
        return bool(conn.exec_driver_sql(f"SELECT pg_try_advisory_lock(hashtext('{RUN_LOCK}'))").scalar())

    def try_shared_migration_lock(self, conn: sa.Connection, wait_seconds: float) -> bool:
        deadline = time.monotonic() + wait_seconds
        while not conn.exec_driver_sql(f"SELECT pg_try_advisory_lock_shared(hashtext('{MIGRATION_LOCK}'))").scalar():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)
        return True

    def release_locks_sql(self) -> list[str]:
        return [f"SELECT pg_advisory_unlock(hashtext('{RUN_LOCK}'))",
                f"SELECT pg_advisory_unlock_shared(hashtext('{MIGRATION_LOCK}'))"]  # fmt: skip

    def text_sql(self, expression: str, length: int) -> str:
        return f"CAST({expression} AS text)"  # text has no length to exceed

    def literal_sql(self, text: str) -> str:
        return f"'{text}'"

    def concat_sql(self, *parts: str) -> str:
        return " || ".join(parts)

    def row_hash_sql(self, columns: Sequence[str], alias: str = "s") -> str:
        return f"hash_record_extended(ROW({', '.join(f'{alias}.{c}' for c in columns)}), 0)"  # the merge's hash

    def row_json_sql(self, alias: str = "s") -> str:
        return f"CAST(row_to_json({alias}) AS text)"

    def not_a_number_sql(self, expression: str) -> str:
        # numeric holds NaN and infinities; NaN equals NaN there, so comparing with the three values is exact
        return f"{expression} IN ('NaN', 'Infinity', '-Infinity')"

    def minus_seconds_sql(self, expression: str, seconds: int) -> str:
        return f"({expression} - {seconds} * INTERVAL '1 second')"

    def local_to_utc_sql(self, expression: str, zone: str) -> str:
        return f"(({expression} AT TIME ZONE {zone}) AT TIME ZONE 'UTC')"

    def utc_instant_sql(self, expression: str) -> str:
        return f"(({expression}) AT TIME ZONE 'UTC')"

    def delete_sql(self, table: str, alias: str, where: str) -> str:
        return f"DELETE FROM {table} AS {alias} WHERE {where}"

    def update_sql(self, table: str, alias: str, assignments: str, where: str) -> str:
        return f"UPDATE {table} AS {alias} SET {assignments} WHERE {where}"

    def delete_counted_sql(self, table: str, alias: str, where: str, column: str | None) -> str:
        returned = f"{alias}.{column}" if column else "''"
        return (f"WITH gone AS ({self.delete_sql(table, alias, where)} RETURNING {returned} AS source_partition) "
                "SELECT source_partition, count(*) FROM gone GROUP BY source_partition")  # fmt: skip

    def temp_table(self, name: str) -> str:
        return f"pg_temp.{name}"

    def create_temp_table_sql(self, name: str, select_list: str, rest: str, *, empty: bool = False) -> str:
        return (f"CREATE TEMP TABLE {name} ON COMMIT DROP AS SELECT {select_list} {rest}"
                + (" WITH NO DATA" if empty else ""))  # fmt: skip

    def drop_temp_table_sql(self, name: str) -> str:
        return f"DROP TABLE IF EXISTS {self.temp_table(name)}"

    def refresh_statistics_sql(self, table: str) -> str:
        # without fresh statistics the planner takes a table whose rows were all replaced for empty, and
        # compares row by row (minutes)
        return f"ANALYZE {table}"

    def summarize_new_ranges_sql(self) -> str:
        # A BRIN index leaves the ranges added since the last VACUUM unsummarized, and every scan reads those
        # whole: after a one-day delta at a million issues each check of `run_id = :run_id` on the daily
        # snapshot read the new day (0.15 s, a dozen such checks). Only indexes the user may summarize (its
        # own roles' tables): another owner's are left to autovacuum rather than fail the run.
        return (
            "SELECT count(brin_summarize_new_values(i.indexrelid)) FROM pg_index AS i "
            "JOIN pg_class AS c ON c.oid = i.indexrelid JOIN pg_am AS a ON a.oid = c.relam "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE a.amname = 'brin' AND n.nspname IN ('dim', 'fact', 'brg') "
            "AND pg_has_role(current_user, c.relowner, 'USAGE')"
        )

    def bulk_insert(self, conn: sa.Connection, table: str, columns: list[str], rows: list[tuple[object, ...]]) -> None:
        column_list = ", ".join(f'"{name}"' for name in columns)
        with (
            _driver_connection(conn).cursor() as cursor,
            cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def restrict_to_reading(self, conn: sa.Connection, as_role: str | None, timeout_seconds: float) -> None:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        conn.execute(
            sa.text("SELECT set_config('statement_timeout', :t, true)"), {"t": f"{int(timeout_seconds * 1000)}ms"}
        )
        if as_role is None:
            return
        if conn.execute(sa.text("SELECT pg_has_role(current_user, :r, 'MEMBER')"), {"r": as_role}).scalar():
            conn.exec_driver_sql(f"SET LOCAL ROLE {conn.dialect.identifier_preparer.quote(as_role)}")
        else:
            user = conn.exec_driver_sql("SELECT current_user").scalar()
            log.warning("quality checks run as %s, which is not a member of %s: grant it, so that checks read with "
                        "the analyst's privileges only", user, as_role)  # fmt: skip


class SqlServer(Dialect):
    name = "mssql"
    create_or_replace_view = "CREATE OR ALTER VIEW"

    def check_driver(self, setting: str) -> None:
        """pyodbc's wheel installs anywhere, but it needs unixODBC and Microsoft's driver, system installs."""
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

    def transaction_setting_sql(self) -> str:
        # the session context, set again before every call (SESSION_CONTEXT(N'name') in the procedures)
        return "EXEC sys.sp_set_session_context @key = :name, @value = :value"

    def call_sql(self, procedure: str, parameters: Sequence[str]) -> str:
        return f"EXEC {procedure} {', '.join(f'@{n} = :{n}' for n in parameters)}"  # ends with a one-row result

    def migration_lock_sql(self) -> list[str]:
        # sp_getapplock reports failure through its return code instead of raising: check it
        return [
            "DECLARE @pmw_lock_result INT;\n"
            f"EXEC @pmw_lock_result = sp_getapplock @Resource = N'{MIGRATION_LOCK}', @LockMode = N'Exclusive', "
            f"@LockOwner = N'Transaction', @LockTimeout = {LOCK_TIMEOUT_MS};\n"
            "IF @pmw_lock_result < 0\n"
            f"    THROW 50000, N'Another migration holds the lock {MIGRATION_LOCK}; wait for it to finish, "
            "then run the upgrade again.', 1"
        ]

    def session_lock_sql(self, resource: str, mode: str, timeout_ms: int) -> str:
        """Take application lock ``resource`` for the session; its one row is >= 0 when taken."""
        return (f"DECLARE @result INT; EXEC @result = sp_getapplock @Resource = N'{resource}', @LockMode = N'{mode}', "
                f"@LockOwner = N'Session', @LockTimeout = {timeout_ms}; SELECT @result")  # fmt: skip

    def _take(self, conn: sa.Connection, sql: str) -> bool:
        result = conn.exec_driver_sql(sql).scalar()
        return result is not None and int(result) >= 0

    def try_run_lock(self, conn: sa.Connection) -> bool:
        return self._take(conn, self.session_lock_sql(RUN_LOCK, "Exclusive", 0))

    def try_shared_migration_lock(self, conn: sa.Connection, wait_seconds: float) -> bool:
        return self._take(conn, self.session_lock_sql(MIGRATION_LOCK, "Shared", int(wait_seconds * 1000)))

    def release_locks_sql(self) -> list[str]:
        return [f"EXEC sp_releaseapplock @Resource = N'{RUN_LOCK}', @LockOwner = N'Session'",
                f"IF APPLOCK_MODE('public', N'{MIGRATION_LOCK}', 'Session') <> 'NoLock' "
                f"EXEC sp_releaseapplock @Resource = N'{MIGRATION_LOCK}', @LockOwner = N'Session'"]  # fmt: skip

    def text_sql(self, expression: str, length: int) -> str:
        return f"CONVERT(NVARCHAR({length}), {expression})"

    def literal_sql(self, text: str) -> str:
        return f"N'{text}'"

    def concat_sql(self, *parts: str) -> str:
        return " + ".join(parts)

    def row_hash_sql(self, columns: Sequence[str], alias: str = "s") -> str:
        # MD5 of the NULL-safe ISO text of each value (style 126), '|' between
        parts = ", N'|', ".join(f"ISNULL(CONVERT(NVARCHAR(4000), {alias}.{c}, 126), N'~')" for c in columns)
        return f"CONVERT(CHAR(32), HASHBYTES('MD5', CONCAT(N'', {parts})), 2)"

    def row_json_sql(self, alias: str = "s") -> str:
        return f"(SELECT {alias}.* FOR JSON PATH, WITHOUT_ARRAY_WRAPPER)"

    def minus_seconds_sql(self, expression: str, seconds: int) -> str:
        return f"DATEADD(second, {-seconds}, {expression})"

    def local_to_utc_sql(self, expression: str, zone: str) -> str:
        return f"CAST(({expression} AT TIME ZONE {zone}) AT TIME ZONE 'UTC' AS DATETIME2(7))"

    def utc_instant_sql(self, expression: str) -> str:
        return f"(CAST({expression} AS DATETIME2(7)) AT TIME ZONE 'UTC')"

    def zone_name(self, zone: str) -> str:
        return time_zones.windows_name(zone)  # AT TIME ZONE takes Windows names (sys.time_zone_info)

    def delete_sql(self, table: str, alias: str, where: str) -> str:
        return f"DELETE {alias} FROM {table} AS {alias} WHERE {where}"

    def update_sql(self, table: str, alias: str, assignments: str, where: str) -> str:
        return f"UPDATE {alias} SET {assignments} FROM {table} AS {alias} WHERE {where}"

    def delete_counted_sql(self, table: str, alias: str, where: str, column: str | None) -> str:
        returned = f"deleted.{column}" if column else "''"
        return ("SET NOCOUNT ON; DECLARE @gone TABLE (source_partition NVARCHAR(64)); "
                f"DELETE {alias} OUTPUT {returned} INTO @gone FROM {table} AS {alias} WHERE {where}; "
                "SELECT source_partition, COUNT(*) FROM @gone GROUP BY source_partition;")  # fmt: skip

    def temp_table(self, name: str) -> str:
        return f"#{name}"

    def create_temp_table_sql(self, name: str, select_list: str, rest: str, *, empty: bool = False) -> str:
        return f"SELECT {'TOP 0 ' if empty else ''}{select_list} INTO #{name} {rest}"

    def drop_temp_table_sql(self, name: str) -> str:
        return f"DROP TABLE IF EXISTS #{name}"

    def bulk_insert(self, conn: sa.Connection, table: str, columns: list[str], rows: list[tuple[object, ...]]) -> None:
        cursor = _driver_connection(conn).cursor()
        cursor.fast_executemany = True  # pyodbc: one round trip per chunk, parameters as arrays
        placeholders = ", ".join("?" for _ in columns)
        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows)
        cursor.close()

    def restrict_to_reading(self, conn: sa.Connection, as_role: str | None, timeout_seconds: float) -> None:
        # no read-only transaction here: the checks impersonate a user that can only read, and the driver's
        # query timeout stands in for statement_timeout
        _driver_connection(conn).timeout = int(timeout_seconds)
        if as_role is not None:
            conn.exec_driver_sql(f"EXECUTE AS USER = N'{roles.MSSQL_CHECK_USER}'")

    def end_restriction(self, conn: sa.Connection, as_role: str | None) -> None:
        if conn.invalidated:
            return
        if as_role is not None:
            conn.exec_driver_sql("REVERT")
        _driver_connection(conn).timeout = 0


DIALECTS: dict[str, Dialect] = {dialect.name: dialect for dialect in (PostgreSQL(), SqlServer())}
SUPPORTED = tuple(DIALECTS)


def named(name: str) -> Dialect:
    """The dialect of SQLAlchemy name ``name``; ConfigurationError for any other."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise ConfigurationError("dialect", name, " or ".join(SUPPORTED), "Choose a supported one.") from None


def of(bind: sa.Connection | sa.Engine) -> Dialect:
    """The dialect of a connection or engine."""
    return named(bind.dialect.name)
