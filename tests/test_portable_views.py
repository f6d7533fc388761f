"""Mart views kept as one text for both dialects (procs/portable; issue #15, point 2).

* Every mart view is either portable or declared here with why it still needs a text per dialect, so a view
  that could be portable is not forgotten and a new two-text view must say why.
* Revision 0023, which made three views portable, changed none of their columns (names, order, types) and
  none of their rows on PostgreSQL: read on a loaded warehouse at head and at 0022 (the previous, per-dialect
  texts), they are equal. (SQL Server's copies parse and resolve offline: tests/test_tsql_names.py.)
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import cloned, loaded_template
from sqlalchemy.engine import URL

from flows import migrate
from flows.database import PORTABLE_DIR, SUPPORTED_DIALECTS, procs_dir

REPO_ROOT = Path(__file__).resolve().parent.parent

TWO_TEXTS = {
    "mart.issue_backlog_age": "its age bucket is text on PostgreSQL (an array's element) and NVARCHAR on SQL Server "
    "(CHOOSE among N'' literals): one CASE of plain literals would make SQL Server's column VARCHAR",
    "mart.project_overview": "PostgreSQL casts the project name to varchar(200) (its type without the cast has no "
    "length); SQL Server's is NVARCHAR(200) uncast, and no cast is spelled alike in both",
    "mart.project_scorecard": "the previous month's key is date arithmetic (interval and to_char; DATEADD and "
    "CONVERT style 112): no function both dialects have",
    "mart.review_performance": "the month a review was planned for is date_trunc on PostgreSQL and DATEFROMPARTS "
    "on SQL Server: no function both dialects have",
}


def _per_dialect_views() -> set[str]:
    return {
        f"mart.{path.stem}" for dialect in SUPPORTED_DIALECTS for path in (procs_dir(dialect) / "mart").glob("*.sql")
    }


def test_every_mart_view_is_portable_or_says_why_not() -> None:
    portable = {f"mart.{path.stem}" for path in (PORTABLE_DIR / "mart").glob("*.sql")}
    assert {"mart.service_financials", "mart.issue_trend", "mart.issue_urgency"} <= portable
    assert _per_dialect_views() == set(TWO_TEXTS), "a view in procs/<dialect>/mart must be declared with a reason"
    assert not portable & set(TWO_TEXTS)


def _revision_0023() -> Any:
    (path,) = (REPO_ROOT / "migrations" / "versions").glob("*_0023_*.py")
    spec = importlib.util.spec_from_file_location("revision_0023", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


AS_OF = datetime(2026, 6, 10, 21, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def loaded(server_admin_url: URL) -> Iterator[URL]:
    with loaded_template(server_admin_url, "pmw_portable", AS_OF) as url:
        yield url


def _read(engine: sa.Engine, views: tuple[str, ...]) -> dict[str, tuple[list[tuple[Any, ...]], list[Any]]]:
    """Each view's rows (sorted) and its columns with their types, as PostgreSQL's catalog states them."""
    found = {}
    with engine.connect() as conn:
        for view in views:
            schema, name = view.split(".")
            columns = conn.execute(
                sa.text("SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale "
                        "FROM information_schema.columns WHERE table_schema = :s AND table_name = :n "
                        "ORDER BY ordinal_position"),
                {"s": schema, "n": name},
            ).all()  # fmt: skip
            rows = conn.execute(sa.text(f"SELECT * FROM {view}")).all()
            found[view] = (sorted((tuple(r) for r in rows), key=repr), [tuple(c) for c in columns])
    return found


def test_revision_0023_changes_no_column_and_no_row_of_the_views_it_made_portable(
    server_admin_url: URL, loaded: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    views = _revision_0023().VIEWS
    with cloned(server_admin_url, loaded, monkeypatch) as engine:
        at_head = _read(engine, views)
        assert all(rows for rows, _ in at_head.values()), "a view without rows compares nothing"
        migrate.downgrade("0022")
        before = _read(engine, views)
        migrate.upgrade("head")
        for view in views:
            assert at_head[view][1] == before[view][1], f"{view}: columns or types changed"
            assert at_head[view][0] == before[view][0], f"{view}: rows changed"
