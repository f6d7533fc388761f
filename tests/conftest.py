"""Shared fixtures: a real PostgreSQL server for the session, a fresh database per test.

The server is the embedded one (started in a temporary data directory and stopped at the end), or
the one ``PMW_TEST_DATABASE_URL`` points at (any PostgreSQL URL whose user may create databases).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

# Prefect: no analytics calls out of this network, and time for the ephemeral API on a loaded machine.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from flows import database, embedded, prefect_server
from flows.runs import without_flow_heartbeats

REPO_ROOT = Path(__file__).resolve().parent.parent


def dialect_of_test_database() -> str:
    """The dialect of PMW_TEST_DATABASE_URL (PostgreSQL, the embedded test server, when unset)."""
    external = os.environ.get("PMW_TEST_DATABASE_URL")
    return make_url(external).get_backend_name() if external else "postgresql"


POSTGRESQL_TEST_SERVER = (
    "PostgreSQL-specific: it runs on the PostgreSQL test server (databases cloned from templates, the demo "
    "source's generator, pg_catalog in its checks); against SQL Server, tests/test_on_sql_server.py and "
    "`pmw verify` check the warehouse"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Against SQL Server (PMW_TEST_DATABASE_URL an mssql+pyodbc URL) every test that needs the PostgreSQL test
    server is skipped with the reason; the dialect-neutral ones (no database, or the embedded server of their
    own) and those written for SQL Server run. Against PostgreSQL, the SQL Server tests skip themselves."""
    if dialect_of_test_database() != "mssql":
        return
    for item in items:
        if "server_admin_url" in getattr(item, "fixturenames", ()) and "sql_server" not in item.keywords:
            item.add_marker(pytest.mark.skip(reason=POSTGRESQL_TEST_SERVER))


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test reads the developer's .env or environment, or writes into the checkout's .pmw; a local
    Prefect server a test's `pmw` started in one of its data directories is stopped after it."""
    for name in list(os.environ):
        if (name.startswith("PMW_") and name != "PMW_TEST_DATABASE_URL") or name == "WAREHOUSE_DB":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PMW_HOME", str(tmp_path / "pmw-home"))
    monkeypatch.chdir(tmp_path)
    yield
    for state in tmp_path.glob(f"*/{prefect_server.STATE_DIR}/server.json"):
        prefect_server.stop(state.parent.parent)


@pytest.fixture(scope="session")
def server_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[URL]:
    """URL of a database on the test server from which other databases can be created."""
    external = os.environ.get("PMW_TEST_DATABASE_URL")
    if external and dialect_of_test_database() == "postgresql":
        yield make_url(external)
        return
    # Not under pytest's numbered temp dirs: pytest prunes old ones, and another pytest session on the
    # same machine must not delete this server's data directory from under it.
    home = Path(tempfile.mkdtemp(prefix="pmw-test-server-"))
    status = embedded.ensure_running(home)
    try:
        yield without_commit_flushes(make_url(status.url("postgres")))
    finally:
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)


def without_commit_flushes(admin: URL) -> URL:
    """A throwaway test server commits without waiting for its WAL to reach the disk (about 7 % of a model
    replay's time here): a crash of it loses nothing anyone keeps. Only for servers a test started itself;
    the embedded server users run keeps PostgreSQL's default."""
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("ALTER SYSTEM SET synchronous_commit = off")
            conn.exec_driver_sql("SELECT pg_reload_conf()")
    finally:
        engine.dispose()
    return admin


def tsql_violations(sql: str) -> list[str]:
    """What sqlfluff's T-SQL parser cannot parse in ``sql`` (no SQL Server runs here: parsing is the check)."""
    import tsql_names  # its parses are kept for the session, and the name tests read the same texts

    return [str(v) for v in tsql_names.parsed(sql).violations]


@pytest.fixture(scope="session")
def mssql_schema():  # type: ignore[no-untyped-def]
    """The schema the offline SQL Server script (`pmw upgrade --sql --dialect mssql`) creates, read from it."""
    import io

    import tsql_names

    from flows import migrate

    script = io.StringIO()
    migrate.upgrade("head", sql=True, dialect="mssql", output=script)
    return tsql_names.schema_from_script(script.getvalue())


@contextmanager
def warehouse_at(url: URL) -> Iterator[None]:
    """While inside, the settings point the warehouse at ``url`` (for module-scoped fixtures, which cannot
    use monkeypatch); the previous value comes back after."""
    saved = os.environ.get("PMW_WAREHOUSE_URL")
    os.environ["PMW_WAREHOUSE_URL"] = url.render_as_string(hide_password=False)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PMW_WAREHOUSE_URL", None)
        else:
            os.environ["PMW_WAREHOUSE_URL"] = saved


def create_database(admin_url: URL, prefix: str = "pmw_test") -> URL:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    database.ensure_database(admin_url, name)
    return admin_url.set(database=name)


def clone_database(admin_url: URL, template: URL, prefix: str = "pmw_clone") -> URL:
    """A new database copied from ``template`` (which nobody may be connected to): seconds instead of a
    migration and a seed per test."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"')
    engine.dispose()
    return admin_url.set(database=name)


@contextmanager
def seeded_template(admin_url: URL, prefix: str, anchor: datetime) -> Iterator[URL]:
    """A database upgraded to head with the demo source seeded at ``anchor``, for tests to clone (nobody stays
    connected); dropped after."""
    from flows import demo_source, migrate

    url = create_database(admin_url, prefix=prefix)
    try:
        with warehouse_at(url):
            migrate.upgrade("head")
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        demo_source.seed(engine, scale=1, seed_value=42, anchor=anchor.replace(tzinfo=None))
        engine.dispose()
        yield url
    finally:
        drop_database(admin_url, url)


@contextmanager
def loaded_template(admin_url: URL, prefix: str, as_of: datetime) -> Iterator[URL]:
    """A seeded template (``seeded_template``) after one successful run of the flow at ``as_of``, to clone."""
    from flows.warehouse_flow import warehouse

    with seeded_template(admin_url, prefix, as_of) as url:
        with warehouse_at(url):
            assert warehouse(as_of=as_of)["status"] == "success"
        dispose_flow_engines()
        yield url


@contextmanager
def cloned(admin_url: URL, template: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    """A fresh copy of ``template`` that the settings point the warehouse at, dropped after (with the flow's
    pooled sessions on it closed first)."""
    url = clone_database(admin_url, template)
    monkeypatch.setenv("PMW_WAREHOUSE_URL", url.render_as_string(hide_password=False))
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        yield engine
    finally:
        engine.dispose()
        dispose_flow_engines()
        drop_database(admin_url, url)


def dispose_flow_engines() -> None:
    """The flow's pooled engines keep sessions open: a database must have none to be cloned or dropped."""
    database.dispose_pooled_engines()


def execute(engine: sa.Engine, sql: str, **params: object) -> None:
    """Run one statement of a test's own in a transaction of its own."""
    with engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def drop_database(admin_url: URL, url: URL) -> None:
    database.drop_database(admin_url, str(url.database))


@pytest.fixture
def database_url(server_admin_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[URL]:
    """A fresh, empty database for one test; the settings point the warehouse (and source) at it."""
    url = create_database(server_admin_url)
    monkeypatch.setenv("PMW_WAREHOUSE_URL", url.render_as_string(hide_password=False))
    try:
        yield url
    finally:
        drop_database(server_admin_url, url)


@pytest.fixture
def engine(database_url: URL) -> Iterator[sa.Engine]:
    eng = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def upgraded(engine: sa.Engine) -> sa.Engine:
    """The test database upgraded to head."""
    from flows import migrate

    migrate.upgrade("head")
    return engine


@pytest.fixture(scope="session")
def upgraded_template(server_admin_url: URL) -> Iterator[URL]:
    """A database upgraded to head and nothing else, for tests to clone."""
    from flows import migrate

    url = create_database(server_admin_url, prefix="pmw_upgraded")
    try:
        with warehouse_at(url):
            migrate.upgrade("head")
        dispose_flow_engines()
        yield url
    finally:
        drop_database(server_admin_url, url)


@pytest.fixture
def model_warehouse(
    server_admin_url: URL, upgraded_template: URL, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[sa.Engine]:
    """A fresh warehouse at head with no source yet, for a scenario of tests/model to replay on."""
    with cloned(server_admin_url, upgraded_template, monkeypatch) as engine:
        yield engine


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A real, temporary Prefect API (SQLite) for flow runs in this session."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90), without_flow_heartbeats():
        yield


def pmw(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `pmw` console script as a user would, in ``cwd``, with the test's environment."""
    executable = shutil.which("pmw", path=str(Path(sys.executable).parent)) or "pmw"
    return subprocess.run(
        [executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


def start_run_process(
    database_url: URL, tmp_path: Path, as_of: datetime, *, capture: bool = False
) -> subprocess.Popen[bytes]:
    """Start `pmw run --as-of` in a process group of its own (so a test can kill it and all it started),
    against the test's database, with its own Prefect home; its output is kept only with ``capture``."""
    env = {
        **os.environ,
        "PMW_WAREHOUSE_URL": database_url.render_as_string(hide_password=False),
        "PREFECT_HOME": str(tmp_path / "prefect-child"),
    }
    output = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", "--as-of", as_of.isoformat()],
        env=env, stdout=output, stderr=subprocess.STDOUT if capture else subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
