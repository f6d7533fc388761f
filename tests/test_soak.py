"""A short soak in CI (the 60-day one: `python tests/soak.py --days 60`): after the initial load and
after each of several simulated days, every whole-warehouse invariant holds."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from soak import START, soak
from warehouse_invariants import violations

from flows import demo_source
from flows.warehouse_flow import warehouse

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


def test_every_invariant_holds_after_every_run_of_a_short_soak(upgraded: sa.Engine) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=START.replace(tzinfo=None))
    assert warehouse(as_of=START)["status"] == "success"
    assert violations(upgraded, START) == {}
    soak(upgraded, days=4, report=lambda line: None)


def test_the_invariants_see_a_lost_grain_an_orphan_and_a_source_mismatch(upgraded: sa.Engine) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=START.replace(tzinfo=None))
    warehouse(as_of=START)
    with upgraded.begin() as conn:  # this test's own database: broken for good
        conn.exec_driver_sql("ALTER TABLE fact.review DROP CONSTRAINT pk_review")
        conn.exec_driver_sql("INSERT INTO fact.review SELECT * FROM fact.review WHERE review_id = 1")
        conn.exec_driver_sql("UPDATE fact.issue_event SET issue_sk = 999999999 WHERE issue_key = 1")
        conn.exec_driver_sql('DELETE FROM dbo."ServiceReviews" WHERE review_id = 2')
        # an issue the source no longer has, still live in the warehouse (no run has seen it go)
        conn.exec_driver_sql("DELETE FROM dbo.acc_issues WHERE acc_issue_id = (SELECT min(acc_issue_id) "
                             "FROM dbo.acc_issues WHERE NOT is_deleted)")  # fmt: skip
    broken = violations(upgraded, START)
    assert broken["fact.review has no primary key"] == 1
    assert broken["fact.issue_event.issue_sk orphan"] >= 1
    assert broken["review count differs from the source"] == 1
    assert broken["live issue keys missing from the source"] == 1
    assert broken["daily snapshot differs from the source's live issues"] == 1
