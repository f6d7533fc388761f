"""Bad input loses nothing: a source table that suddenly loses most of its rows trips the circuit breaker
(the dimension keeps its rows, the run fails saying what to do, no watermark moves) until an operator
forces the run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from flows import demo_source
from flows.warehouse_flow import RunParameters, warehouse

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_2 = datetime(2026, 11, 2, tzinfo=UTC)

pytestmark = pytest.mark.usefixtures("prefect_harness")


def one(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def review_state(engine: sa.Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        live, deleted, versions = conn.execute(sa.text(
            "SELECT count(*) FILTER (WHERE is_current AND NOT is_deleted AND review_sk <> -1), "
            "count(*) FILTER (WHERE is_current AND is_deleted), count(*) FROM dim.review")).one()  # fmt: skip
    return live, deleted, versions


def watermarks(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT * FROM ctl.watermark ORDER BY 1, 2"))]


def test_an_emptied_source_table_trips_the_circuit_breaker_until_forced(upgraded: sa.Engine) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=NOV_1.replace(tzinfo=None))
    warehouse(RunParameters(as_of=NOV_1))
    before, marks = review_state(upgraded), watermarks(upgraded)
    assert before[0] > 100

    with upgraded.begin() as conn:  # an application bug empties the reviews table
        conn.execute(sa.text('DELETE FROM dbo."ServiceReviews"'))
    with pytest.raises(Exception, match=r"circuit breaker: dim\.review would close \d+ of its \d+ live rows") as raised:
        warehouse(RunParameters(as_of=NOV_2))
    assert "--force-deletes" in str(raised.value) and "PMW_MAX_DELETE_SHARE" in str(raised.value)
    assert review_state(upgraded) == before  # nothing closed, nothing half-written
    assert watermarks(upgraded) == marks
    failed_run = one(upgraded, "SELECT max(run_id) FROM ctl.run")
    assert one(upgraded, "SELECT status FROM ctl.run WHERE run_id = :r", r=failed_run) == "failed"
    assert "circuit breaker" in one(upgraded, "SELECT error_text FROM ctl.run WHERE run_id = :r", r=failed_run)
    assert one(upgraded, "SELECT count(*) FROM dim.review WHERE run_id = :r", r=failed_run) == 0

    # the operator checked: the reviews really are gone
    assert warehouse(RunParameters(as_of=NOV_2, force_deletes=True))["status"] == "success"
    live, deleted, _ = review_state(upgraded)
    assert (live, deleted) == (0, before[0])


def test_a_few_deletions_pass_the_circuit_breaker(upgraded: sa.Engine) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=NOV_1.replace(tzinfo=None))
    warehouse(RunParameters(as_of=NOV_1))
    live = review_state(upgraded)[0]
    with upgraded.begin() as conn:
        conn.execute(sa.text('DELETE FROM dbo."ServiceReviews" WHERE review_id IN '
                             '(SELECT review_id FROM dbo."ServiceReviews" ORDER BY review_id LIMIT 3)'))  # fmt: skip
    assert warehouse(RunParameters(as_of=NOV_2))["status"] == "success"
    assert review_state(upgraded)[:2] == (live - 3, 3)


def test_the_limit_is_a_share_between_0_and_1(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from flows.settings import Settings

    monkeypatch.setenv("PMW_MAX_DELETE_SHARE", "1.5")
    with pytest.raises(ValidationError, match="max_delete_share"):
        Settings()
