"""Migrations with data: a warehouse holding data goes down to every earlier revision and back up to head
with the data of every table that revision has intact, data migrations included (the issue events'
projects are backfilled exactly as the events loader writes them), and then runs on."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from conftest import REPO_ROOT

from flows import demo_source, migrate
from flows.warehouse_flow import warehouse

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
DATA_SCHEMAS = ("stg", "dim", "fact", "brg", "ctl")


def _rederived_steps() -> tuple[str, ...]:
    """The steps whose state a revision's upgrade removes on purpose (``REDERIVED_STEPS``: the next run
    re-derives their rows under the corrected rules): ctl.step_state comes back up without them."""
    steps: list[str] = []
    for path in sorted((REPO_ROOT / "migrations" / "versions").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"revision_{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        steps.extend(getattr(module, "REDERIVED_STEPS", ()))
    return tuple(steps)


# what a table's comparison leaves out (rows a data migration resets by design)
LEFT_OUT = {"ctl.step_state": "step_name NOT IN ({})".format(", ".join(f"'{s}'" for s in _rederived_steps()))}

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


def _revisions_below_head() -> list[str]:
    script = ScriptDirectory(str(REPO_ROOT / "migrations"))
    order = [r.revision for r in script.walk_revisions("base", "heads")]  # newest first
    return order[1:]


def table_contents(engine: sa.Engine) -> dict[str, tuple[int, str]]:
    """Row count and a digest of the rows of every table in the warehouse's data schemas."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SET TimeZone = 'UTC'")
        conn.exec_driver_sql("SET DateStyle = 'ISO, YMD'")
        tables = conn.execute(
            sa.text("SELECT table_schema || '.' || table_name FROM information_schema.tables "
                    "WHERE table_schema = ANY(:schemas) AND table_type = 'BASE TABLE'"),
            {"schemas": list(DATA_SCHEMAS)},
        ).scalars().all()  # fmt: skip
        digest = "SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {} AS t WHERE {}"
        return {
            table: tuple(conn.execute(sa.text(digest.format(table, LEFT_OUT.get(table, "TRUE")))).one())
            for table in tables
        }


def test_a_warehouse_with_data_goes_down_to_every_revision_and_back_up_intact(upgraded: sa.Engine) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    assert warehouse(as_of=AS_OF)["status"] == "success"
    demo_source.advance(upgraded, days=1)
    assert warehouse(as_of=AS_OF + timedelta(days=1))["status"] == "success"
    upgraded.dispose()
    at_head = table_contents(upgraded)
    assert at_head["fact.issue_event"][0] > 0 and at_head["brg.review_issue"][0] > 0

    for revision in _revisions_below_head():
        migrate.downgrade(revision)
        upgraded.dispose()
        kept = table_contents(upgraded)  # the tables this revision has, with the data they hold there
        assert set(kept) <= set(at_head), revision  # (0013 adds roles and grants, no table)
        migrate.upgrade("head")
        upgraded.dispose()
        back = table_contents(upgraded)
        assert set(back) == set(at_head), revision
        for table, contents in kept.items():
            # every table the revision has comes back as it was at head (a column a later revision added
            # comes back filled by that revision's data migration); at the revision itself it held the same
            # rows unless a later revision had added a column to it
            assert back[table] == at_head[table], (revision, table)
            assert contents[0] == at_head[table][0], (revision, table)

    # the warehouse runs on: the next day loads as if nothing had happened
    demo_source.advance(upgraded, days=1)
    assert warehouse(as_of=AS_OF + timedelta(days=2))["status"] == "success"
