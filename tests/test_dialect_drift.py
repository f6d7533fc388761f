"""Drift between the dialects' texts of a procedure, for the rules issue #15 found drifted (the start of the
parity test it asks for): the daily issue snapshot of either dialect recomputes after late versions of the
same dimensions, and takes ``created_date_key`` from the date dimension (-1 outside it)."""

from __future__ import annotations

import re

from flows.database import SUPPORTED_DIALECTS, procs_dir


def _text(dialect: str, qualified: str) -> str:
    schema, name = qualified.split(".")
    return (procs_dir(dialect) / schema / f"{name}.sql").read_text()


def _late_data_dimensions(sql: str) -> set[str]:
    """The dimensions whose versions newer than the last snapshot run start a recompute."""
    return set(re.findall(r"FROM (dim\.\w+) WHERE run_id > [@v_]+last_run", sql, re.I))


def test_both_snapshots_recompute_after_late_versions_of_the_same_dimensions() -> None:
    found = {dialect: _late_data_dimensions(_text(dialect, "warehouse.load_fact_issue_daily")) for dialect in
             SUPPORTED_DIALECTS}  # fmt: skip
    expected = {"dim.issue", "dim.issue_analytics", "dim.project", "dim.status_map", "dim.priority_map"}
    assert all(dimensions == expected for dimensions in found.values()), found


def test_both_snapshots_take_the_created_date_key_from_the_calendar() -> None:
    for dialect in SUPPORTED_DIALECTS:
        sql = _text(dialect, "warehouse.load_fact_issue_daily")
        assert re.search(r"COALESCE\(\(?(SELECT )?cd\.date_key.*-1\)", sql, re.S), dialect
        assert "CONVERT(CHAR(8), created_date, 112)" not in sql, dialect
