"""A backfill: `pmw run --backfill-from D` recomputes the daily issue snapshot for every issue from the local
date D to the as-of date, before the first snapshot date too, and the project months those days end."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from flows import demo_source
from flows.warehouse_flow import warehouse

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_3 = datetime(2026, 11, 3, tzinfo=UTC)  # 11:00 on 3 November in Sydney
ZONE = "Australia/Sydney"

pytestmark = pytest.mark.usefixtures("prefect_harness")


def scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def days(engine: sa.Engine) -> dict[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT snapshot_date_key, count(*) FROM fact.issue_daily GROUP BY 1")).all()
    return {key: count for key, count in rows}


def live_issues_at_end_of(engine: sa.Engine, day: date) -> int:
    """Issues that exist and are not deleted at the last instant of ``day`` (local), from dimension history (an
    issue first seen deleted has only a deleted version, from its created_at: it lived until its deleted_at)."""
    return int(
        scalar(
            engine,
            """WITH instant AS (
            SELECT ((CAST(:d AS date) + 1)::timestamp AT TIME ZONE :z) - interval '1 microsecond' AS at)
        SELECT count(*) FROM dim.issue, instant WHERE issue_sk <> -1 AND (NOT is_deleted OR deleted_at > at)
            AND valid_from <= at AND valid_to > at AND COALESCE(created_at, valid_from) <= at""",
            d=day,
            z=ZONE,
        )
    )


def test_a_backfill_recomputes_every_issue_from_a_date(upgraded: sa.Engine) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=NOV_1.replace(tzinfo=None))
    warehouse(as_of=NOV_3)
    assert set(days(upgraded)) == {20261103}  # the series starts at the first run's as-of date
    as_of_day = days(upgraded)[20261103]

    result = warehouse(as_of=NOV_3, backfill_from=date(2026, 10, 25))
    assert result["status"] == "success"
    filled = days(upgraded)
    expected = [date(2026, 10, 25) + timedelta(days=n) for n in range(10)]  # 25 October to 3 November
    assert sorted(filled) == [int(d.strftime("%Y%m%d")) for d in expected]
    for day in expected[:-1]:  # every past day holds the issues alive at its end
        assert filled[int(day.strftime("%Y%m%d"))] == live_issues_at_end_of(upgraded, day), day
    assert filled[20261103] == as_of_day
    rewritten = "SELECT count(*) FROM fact.issue_daily WHERE snapshot_date_key = 20261103 AND run_id = :r"
    assert scalar(upgraded, rewritten, r=result["run_id"]) == 0  # identical rows are left alone
    # the project months those days end: October now exists, from its last day, and its totals (the unknown
    # project's row included) equal the snapshot's
    assert scalar(upgraded, "SELECT sum(issues_total) FROM fact.project_monthly WHERE month_date_key = 20261001") == (
        scalar(upgraded, "SELECT count(*) FROM fact.issue_daily WHERE snapshot_date_key = 20261031")
    )

    again = warehouse(as_of=NOV_3, backfill_from=date(2026, 10, 25))
    step = "SELECT rows_inserted + rows_updated + rows_deleted FROM ctl.run_step WHERE run_id = :r AND step_name = :s"
    written = scalar(upgraded, step, r=again["run_id"], s="warehouse.load_fact_issue_daily")
    assert written == 0
