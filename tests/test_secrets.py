"""Credentials never appear in pmw output, logs or error messages."""

from __future__ import annotations

import subprocess
import sys

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
