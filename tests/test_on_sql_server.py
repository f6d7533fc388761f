"""The warehouse on a real SQL Server, when PMW_TEST_DATABASE_URL is an ``mssql+pyodbc`` URL of an empty scratch
database (issue #15, point 5): the offline script's schema goes on online, the same runs go into it and into
an embedded PostgreSQL reference (the demo source on PostgreSQL), every dim, fact, brg and mart object is
compared value for value (`pmw verify`), and `pmw status` and `pmw dq` read it. No SQL Server runs where
this project's CI runs: there these tests are skipped, saying so.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import dialect_of_test_database

from flows import cli, embedded

pytestmark = [
    pytest.mark.sql_server,
    pytest.mark.slow,
    pytest.mark.skipif(
        dialect_of_test_database() != "mssql",
        reason="needs PMW_TEST_DATABASE_URL set to an mssql+pyodbc URL of an empty scratch database on SQL Server",
    ),
]


@pytest.mark.usefixtures("prefect_harness")
def test_the_warehouse_on_sql_server_equals_the_postgresql_reference(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = os.environ["PMW_TEST_DATABASE_URL"]
    home = os.environ["PMW_HOME"]  # the test's own: verify starts an embedded server there for the reference
    try:
        code = cli.main(["verify", "--against", target, "--days", "2"])
        captured = capsys.readouterr()
        assert code == 0, captured.out + captured.err
        monkeypatch.setenv("PMW_WAREHOUSE_URL", target)
        assert cli.main(["status"]) == 0
        assert cli.main(["dq"]) == 0, capsys.readouterr().out
    finally:
        embedded.stop(Path(home).resolve())
