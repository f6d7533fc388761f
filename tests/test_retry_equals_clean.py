"""A retry reaches exactly the clean state: for each step of the flow (taken from the flow's own plan,
``pipeline.step_plan``: every pull, the calendar, every dimension, every fact and bridge procedure, the
publication of the facts, the watermark update, the checks), the database makes that step fail (a
trigger of the test's that raises while that step runs), the run is retried on the same source, and every
dim, fact and brg table and every mart view equals an uninterrupted run's, value for value (surrogate keys
and load bookkeeping aside). Also: a failure on a month's last local day retried on the next day, and a
failed fact phase leaving readers the previous run's facts whole.

CI runs the steps in ``CI_STEPS``; ``PMW_RETRY_ALL_STEPS=1 pytest tests/test_retry_equals_clean.py`` runs
every step of the plan (a step added later is in it without anyone remembering).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from conftest import clone_database, cloned, drop_database, seeded_template, warehouse_at
from dimension_checks import everything, scd2_violations, warehouse_contents
from sqlalchemy.engine import URL

from flows import demo_source, pipeline
from flows.warehouse_flow import warehouse

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
PLAN = dict(pipeline.step_plan())
# CI's subset: one of each kind of step, and every step of the fact phase (where a failure used to leave
# readers half a run, and a retry to recompute nothing)
CI_STEPS = (
    "pull issues", "pull reviews", pipeline.CALENDAR_STEP, "warehouse.load_dim_issue", "warehouse.load_dim_review",
    *(step for step in PLAN if step.startswith(("warehouse.load_fact", "warehouse.load_brg", "warehouse.add_"))),
    pipeline.PUBLISH_STEP, pipeline.WATERMARK_STEP, pipeline.QUALITY_STEP,
)  # fmt: skip
STEPS = list(PLAN) if os.environ.get("PMW_RETRY_ALL_STEPS") else list(CI_STEPS)

FAULT = """CREATE OR REPLACE FUNCTION public.pmw_test_fault() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM ctl.run_step WHERE status = 'running' AND step_name = TG_ARGV[0]) THEN
        RAISE EXCEPTION 'injected fault in %', TG_ARGV[0];
    END IF;
    RETURN NULL;
END $$"""

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


def add_fault(engine: sa.Engine, step: str, table: str) -> None:
    """Make ``step`` fail from the database: a statement on ``table`` raises while ``step`` runs."""
    with engine.begin() as conn:
        conn.exec_driver_sql(FAULT, execution_options={"no_parameters": True})
        conn.exec_driver_sql(
            f"CREATE TRIGGER pmw_test_fault BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION public.pmw_test_fault('{step}')"
        )


def remove_fault(engine: sa.Engine, table: str) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TRIGGER pmw_test_fault ON {table}")


@pytest.fixture(scope="module")
def template(server_admin_url: URL) -> Iterator[URL]:
    """An upgraded warehouse with the demo source seeded at AS_OF, to clone."""
    with seeded_template(server_admin_url, "pmw_retry_template", AS_OF) as url:
        yield url


@pytest.fixture
def clone(server_admin_url: URL, template: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    """A fresh copy of the template that the flow's settings point at."""
    with cloned(server_admin_url, template, monkeypatch) as engine:
        yield engine


@pytest.fixture(scope="module")
def uninterrupted(server_admin_url: URL, template: URL) -> Iterator[dict[str, list[tuple[object, ...]]]]:
    """Every table and view after one uninterrupted run at AS_OF."""
    url = clone_database(server_admin_url, template)
    try:
        with warehouse_at(url):
            assert warehouse(as_of=AS_OF)["status"] == "success"
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        contents = everything(engine)
        engine.dispose()
        assert all(contents[t] for t in ("fact.issue_daily", "fact.project_monthly", "mart.project_scorecard"))
        yield contents
    finally:
        drop_database(server_admin_url, url)


def test_every_step_of_the_plan_has_a_table_and_ci_covers_every_kind() -> None:
    assert set(CI_STEPS) <= set(PLAN)
    assert all(table.count(".") == 1 for table in PLAN.values())
    kinds = {"pull ", "warehouse.load_dim_", "warehouse.load_fact_", "warehouse.load_brg_"}
    assert all(any(s.startswith(k) for s in CI_STEPS) for k in kinds)


@pytest.mark.parametrize("step", STEPS)
def test_a_step_that_fails_then_a_retry_gives_the_uninterrupted_warehouse(
    step: str, clone: sa.Engine, uninterrupted: dict[str, list[tuple[object, ...]]]
) -> None:
    table = PLAN[step]
    add_fault(clone, step, table)
    with pytest.raises(Exception, match="injected fault"):
        warehouse(as_of=AS_OF)
    with clone.connect() as conn:
        failed = conn.execute(sa.text("SELECT status, error_text FROM ctl.run")).one()
        step_status = conn.execute(
            sa.text("SELECT status FROM ctl.run_step WHERE step_name = :s"), {"s": step}
        ).scalar()
        published = conn.execute(sa.text("SELECT count(*) FROM ctl.publication")).scalar()
    assert failed.status == "failed" and f"injected fault in {step}" in failed.error_text
    assert step_status == "failed"
    if step in list(PLAN)[: list(PLAN).index(pipeline.PUBLISH_STEP) + 1]:
        # before the facts were published, readers see no fact of the failed run (here: none at all)
        assert published == 0
        assert all(not rows for t, rows in warehouse_contents(clone).items() if t.startswith(("fact.", "brg.")))
    remove_fault(clone, table)

    assert warehouse(as_of=AS_OF)["status"] == "success"
    assert scd2_violations(clone) == {}
    contents = everything(clone)
    assert set(contents) == set(uninterrupted)
    for name, rows in uninterrupted.items():
        assert contents[name] == rows, f"after a failure in {step} and a retry, {name} differs from a clean run"


MONTH_END = datetime(2026, 10, 29, 20, tzinfo=UTC)  # 07:00 on 30 October in Sydney; +1 day: 31 October


def _days(engine: sa.Engine, fail_on_second: bool) -> None:
    """30 October, 31 October (the month's last local day), 1 November: a run each day."""
    demo_source.seed(engine, scale=1, seed_value=7, anchor=MONTH_END.replace(tzinfo=None), replace=True)
    assert warehouse()["status"] == "success"  # as of the demo's clock
    demo_source.advance(engine, days=1)
    if fail_on_second:
        step = "warehouse.load_fact_project_monthly"
        published = {t: rows for t, rows in warehouse_contents(engine).items() if t.startswith(("fact.", "brg."))}
        add_fault(engine, step, PLAN[step])
        with pytest.raises(Exception, match="injected fault"):
            warehouse()
        remove_fault(engine, PLAN[step])
        # the failed run published nothing: readers still see 30 October's facts, whole
        after = {t: rows for t, rows in warehouse_contents(engine).items() if t.startswith(("fact.", "brg."))}
        assert after == published
    else:
        assert warehouse()["status"] == "success"
    demo_source.advance(engine, days=1)
    assert warehouse()["status"] == "success"


def test_a_failure_on_the_months_last_day_retried_the_next_day_gives_the_uninterrupted_warehouse(
    clone: sa.Engine, server_admin_url: URL, template: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    _days(clone, fail_on_second=True)
    retried = everything(clone)
    url = clone_database(server_admin_url, template)
    try:
        monkeypatch.setenv("PMW_WAREHOUSE_URL", url.render_as_string(hide_password=False))
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        _days(engine, fail_on_second=False)
        clean = everything(engine)
        engine.dispose()
    finally:
        drop_database(server_admin_url, url)
    october = [row for row in clean["fact.project_monthly"] if row[0] == 20261001]
    assert october and [row for row in retried["fact.project_monthly"] if row[0] == 20261001] == october
    for name, rows in clean.items():
        assert retried[name] == rows, f"{name} differs after a month-end failure retried the next day"


def test_a_lock_timeout_inside_a_fact_procedure_redoes_the_whole_fact_phase(
    clone: sa.Engine, uninterrupted: dict[str, list[tuple[object, ...]]]
) -> None:
    """A transient fault from the database (a lock timeout in the last fact step): the phase is rolled back
    and redone whole within the same run, which ends as clean as an uninterrupted one."""
    step = "warehouse.load_fact_project_monthly"
    with clone.connect() as conn:
        conn.exec_driver_sql(f"ALTER DATABASE \"{clone.url.database}\" SET lock_timeout = '1s'")
        conn.commit()
    blocker = clone.connect()
    blocker.execute(sa.text(f"LOCK TABLE {PLAN[step]} IN EXCLUSIVE MODE"))
    seen_failed = threading.Event()

    def release_after_the_first_attempt() -> None:
        deadline = time.monotonic() + 300
        with clone.connect() as watcher:
            while time.monotonic() < deadline:
                found = watcher.execute(
                    sa.text("SELECT count(*) FROM ctl.run_step WHERE step_name = :s AND status = 'failed'"), {"s": step}
                ).scalar()
                watcher.rollback()
                if found:
                    seen_failed.set()
                    break
                time.sleep(0.1)
        blocker.rollback()

    releaser = threading.Thread(target=release_after_the_first_attempt)
    releaser.start()
    try:
        result = warehouse(as_of=AS_OF)
    finally:
        releaser.join(timeout=320)
        blocker.close()
    assert seen_failed.is_set(), "the first attempt never failed on the lock"
    assert result["status"] == "success"
    with clone.connect() as conn:
        statuses = set(conn.execute(sa.text("SELECT status FROM ctl.run_step")).scalars())
    assert statuses == {"success"}  # the redone phase's steps replaced the first attempt's records
    assert everything(clone) == uninterrupted
