"""Credentials never appear in pmw output, logs or error messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

SECRET = "s3cr3t-Pa55word"


def _pmw(*args: str, env_url: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "PMW_WAREHOUSE_URL": env_url, "PMW_LOG_LEVEL": "DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_no_secret_in_output_of_commands_that_connect(database_url: URL) -> None:
    # The embedded server trusts local connections, so a password in the URL is accepted and unused.
    with_password = database_url.set(password=SECRET).render_as_string(hide_password=False)
    for args in (["config"], ["upgrade"], ["source", "seed"], ["source", "advance"], ["upgrade", "--sql"]):
        result = _pmw(*args, env_url=with_password)
        assert result.returncode == 0, result.stderr
        assert SECRET not in result.stdout + result.stderr, args
    assert "***" in _pmw("config", env_url=with_password).stdout


def test_no_secret_in_connection_errors(database_url: URL) -> None:
    unreachable = URL.create(
        "postgresql+psycopg", username="etl", password=SECRET, host="127.0.0.1", port=1, database="x"
    ).render_as_string(hide_password=False)
    result = _pmw("upgrade", env_url=unreachable)
    assert result.returncode == 2
    assert "database error" in result.stderr and "PMW_WAREHOUSE_URL" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_no_secret_when_the_url_cannot_be_parsed() -> None:
    result = _pmw("upgrade", env_url=f"not a url with {SECRET}")
    assert result.returncode == 2
    assert "PMW_WAREHOUSE_URL" in result.stderr and SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("shown", ["postgresql+psycopg://etl:***@db/x"])
def test_redact_url_hides_the_password(shown: str) -> None:
    from flows.database import redact_url

    assert redact_url(f"postgresql+psycopg://etl:{SECRET}@db/x") == shown
    assert SECRET not in redact_url(sa.engine.make_url(f"mssql+pyodbc://etl:{SECRET}@db/x"))


# --- one redaction for every URL form (issue #12) -------------------------------------------------------------

CANARIES = {form: f"Canary{form.title().replace('_', '')}9z" for form in (
    "userinfo", "unencoded_at", "password_query", "userinfo_unreachable", "query_unreachable",
    "unencoded_unreachable", "pwd_query", "odbc_pwd", "odbc_braced",
)}  # fmt: skip
AS_OF = "2026-11-01T00:00:00+00:00"


def _with_unencoded_at(url: URL, password: str) -> str:
    """``url`` with the password ``Pa@<password>`` written as people paste it: the ``@`` not encoded."""
    rendered = url.render_as_string(hide_password=False)
    scheme, rest = rendered.split("://", 1)
    user, _, after = rest.partition("@")
    return f"{scheme}://{user.partition(':')[0]}:Pa@{password}@{after}"


def _unreachable(**query: str) -> URL:
    return URL.create("postgresql+psycopg", username="etl", host="127.0.0.1", port=1, database="x", query=query)


def _odbc(pwd: str) -> str:
    from urllib.parse import quote

    return "mssql+pyodbc:///?odbc_connect=" + quote(
        f"DRIVER={{ODBC Driver 18 for SQL Server}};SERVER=127.0.0.1,1;{pwd}"
    )


def _run_pmw(tmp_path: Path, env: dict[str, str], *args: str) -> str:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("PMW_")}
    full = {**base, "PREFECT_HOME": str(tmp_path / "prefect"), "PMW_HOME": str(tmp_path / "home"), **env}
    result = subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=full,
                            timeout=600)  # fmt: skip
    return f"$ pmw {' '.join(args)} (exit {result.returncode})\n{result.stdout}\n{result.stderr}"


def _ctl_text(url: URL) -> str:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        tables = conn.exec_driver_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'ctl' AND table_type = 'BASE TABLE'"
        ).scalars().all()  # fmt: skip
        text = "\n".join(
            str(conn.exec_driver_sql(f"SELECT array_agg(t::text) FROM ctl.{name} AS t").scalar()) for name in tables
        )
    engine.dispose()
    assert "run_step" in tables and "data_quality_result" in tables
    return text


def test_a_canary_password_in_every_url_form_appears_nowhere(database_url: URL, tmp_path: Path) -> None:
    """A succeeding and several failing runs with a canary password in each URL form; the canaries are then
    searched for in what pmw printed, every ctl table, and everything Prefect stored (its database: state
    messages, logs, events, artifacts)."""
    from flows import demo_source, migrate, prefect_server

    migrate.upgrade("head")
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    demo_source.seed(engine, scale=1, seed_value=42)
    engine.dispose()
    c = CANARIES
    warehouse = _with_unencoded_at(database_url.set(password=c["userinfo"]), c["unencoded_at"])
    source = database_url.update_query_dict({"password": c["password_query"]}).render_as_string(hide_password=False)
    failing_sources = [
        _unreachable(password=c["query_unreachable"]).set(password=c["userinfo_unreachable"]),
        _with_unencoded_at(_unreachable(pwd=c["pwd_query"]), c["unencoded_unreachable"]),
        _odbc(f"UID=etl;PWD={c['odbc_pwd']};"),
        _odbc(f"UID=etl;Pwd={{{c['odbc_braced']}}};"),
    ]
    env = {"PMW_WAREHOUSE_URL": warehouse, "PMW_SOURCE_URL": source}
    output = [_run_pmw(tmp_path, env, "run", "--as-of", AS_OF), _run_pmw(tmp_path, env, "config")]
    assert "(exit 0)" in output[0] and "status: success" in output[0], output[0]
    for failing in failing_sources:
        rendered = failing if isinstance(failing, str) else failing.render_as_string(hide_password=False)
        bad = {**env, "PMW_SOURCE_URL": rendered}
        output += [_run_pmw(tmp_path, bad, "run", "--as-of", AS_OF), _run_pmw(tmp_path, bad, "config")]
        assert "(exit 0)" not in output[-2], output[-2]
        assert "Traceback" not in output[-2], output[-2]  # a clean message, no traceback unless DEBUG
    output += [_run_pmw(tmp_path, env, "status"), _run_pmw(tmp_path, env, "dq")]
    printed = "\n".join(output)
    assert "***" in printed
    stored = _ctl_text(database_url)
    # the client's Prefect home, and the local Prefect server's state: its log, and its database of runs,
    # task runs, logs and artifacts
    prefect_dirs = [tmp_path / "prefect", prefect_server.state_dir(tmp_path / "home")]
    prefect_files = [p for d in prefect_dirs for p in d.rglob("*") if p.is_file()]
    assert any(p.name.startswith("prefect.db") for p in prefect_files), prefect_files
    prefect_bytes = b"".join(p.read_bytes() for p in prefect_files)
    assert b"run_procedure" in prefect_bytes or b"pull_source" in prefect_bytes  # the runs' tasks are in there
    for form, canary in c.items():
        assert canary not in printed, (form, printed[max(printed.find(canary) - 300, 0) :][:600])
        assert canary not in stored, form
        assert canary.encode() not in prefect_bytes, form


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://etl:Hunter2Secret@db:5432/x", "postgresql+psycopg://etl:***@db:5432/x"),
        ("postgresql+psycopg://etl:Pa@ss@Hunter2Secret@127.0.0.1/x", "postgresql+psycopg://etl:***@127.0.0.1/x"),
        ("postgresql+psycopg://etl@db/x?password=Hunter2Secret&sslmode=require",
         "postgresql+psycopg://etl@db/x?password=***&sslmode=require"),
        ("postgresql+psycopg://etl@db/x?PWD=Hunter2Secret", "postgresql+psycopg://etl@db/x?PWD=***"),
        ("mssql+pyodbc:///?odbc_connect=DRIVER%3D%7BODBC%7D%3BUID%3Detl%3BPWD%3DHunter2Secret",
         "mssql+pyodbc:///?odbc_connect=DRIVER={ODBC};UID=etl;PWD=***"),
        ("mssql+pyodbc:///?odbc_connect=UID=etl;Pwd={Hunter2;Secret};", "mssql+pyodbc:///?odbc_connect=UID=etl;Pwd=***;"),
    ],
)  # fmt: skip
def test_every_url_form_is_redacted_the_same_way(url: str, shown: str) -> None:
    from flows.redaction import parse_url, redact_url

    assert redact_url(url) == shown
    assert "Hunter2" not in redact_url(parse_url(url))


def test_an_unencoded_at_is_read_as_part_of_the_password_so_the_host_is_right() -> None:
    from flows.redaction import parse_url

    url = parse_url("postgresql+psycopg://etl:Pa@ss@Hunter2Secret@127.0.0.1:5433/x?sslmode=require")
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "etl", "Pa@ss@Hunter2Secret", "127.0.0.1", 5433, "x",
    )  # fmt: skip
    socket = parse_url("postgresql+psycopg://postgres:c@n@/x?host=/tmp/s&port=5432")
    assert (socket.password, socket.host, socket.query["host"]) == ("c@n", None, "/tmp/s")


def test_a_driver_message_that_echoes_a_registered_secret_or_a_connection_string_is_scrubbed() -> None:
    from flows import redaction

    redaction.register_url("postgresql+psycopg://etl:EchoedSecret77@db/x")
    echoed = (
        "connection failed: invalid dsn: host=db user=etl password=EchoedSecret77 dbname=x; "
        "[Microsoft][ODBC] Login failed: DRIVER={x};UID=etl;PWD={other;secret}; (EchoedSecret77)"
    )
    scrubbed = redaction.scrub(echoed)
    assert "EchoedSecret77" not in scrubbed and "other;secret" not in scrubbed
    assert "password=***" in scrubbed and "PWD=***" in scrubbed and "user=etl" in scrubbed
