"""Replay a scenario against a real warehouse, and after every run compare each fact, bridge and mart with
the model.

The warehouse is the real one: the database is upgraded to head, the flow is the Prefect flow, and a fault is
the test's own database objects (triggers that raise while the chosen step runs: when it first writes its
table, or else when it records its success), never a patch of the project's code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from flows.pipeline import step_plan
from model import compare
from model.history import History, Run, snapshot
from model.scenario import RunPlan, Scenario, apply_change, create_source
from model.timeline import local_date

FAULT_STEPS: tuple[str, ...] = tuple(step for step, _ in step_plan())


@dataclass(frozen=True)
class Failure:
    """The first run after which the warehouse and the model differ (or the run itself went wrong)."""

    day: int
    run: RunPlan
    what: str  # the differences, or why the run failed, readable
    objects: frozenset[str] = frozenset()  # the facts, bridges and marts that differ (none: the run failed)

    def same_defect(self, other: Failure) -> bool:
        """Whether ``other`` shows the same defect, as far as a shrinker can tell: a difference in one of the
        same objects, or (for a run that went wrong) a run that went wrong too."""
        return bool(self.objects & other.objects) if self.objects else not other.objects

    def __str__(self) -> str:
        return f"day {self.day}, run at minute {self.run.at}: {self.what}"


def _install_fault(conn: sa.Connection, step: str) -> None:
    table = dict(step_plan())[step]
    conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS model_fault")
    conn.exec_driver_sql("""CREATE OR REPLACE FUNCTION model_fault.raise_in() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_TABLE_NAME = 'run_step' OR EXISTS (SELECT 1 FROM ctl.run_step
                    WHERE run_id = (SELECT max(run_id) FROM ctl.run) AND step_name = TG_ARGV[0]
                        AND status = 'running') THEN
                RAISE EXCEPTION 'injected fault in step %', TG_ARGV[0];
            END IF;
            RETURN NULL;
        END $$""", execution_options={"no_parameters": True})  # fmt: skip
    quoted = step.replace("'", "''")
    conn.exec_driver_sql(f"CREATE TRIGGER model_fault BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                         f"FOR EACH STATEMENT EXECUTE FUNCTION model_fault.raise_in('{quoted}')")  # fmt: skip
    # a step with nothing to write there fails as it records its success instead
    conn.exec_driver_sql(f"CREATE TRIGGER model_fault_at_end BEFORE UPDATE ON ctl.run_step FOR EACH ROW "
                         f"WHEN (NEW.step_name = '{quoted}' AND NEW.status = 'success') "
                         f"EXECUTE FUNCTION model_fault.raise_in('{quoted}')")  # fmt: skip


def _remove_fault(conn: sa.Connection, step: str) -> None:
    table = dict(step_plan())[step]
    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS model_fault ON {table}")
    conn.exec_driver_sql("DROP TRIGGER IF EXISTS model_fault_at_end ON ctl.run_step")


def _run_once(engine: sa.Engine, parameters: dict[str, Any]) -> tuple[int, bool, str]:
    """Run the flow; (run id, whether its facts were published, its status or error)."""
    from flows.warehouse_flow import warehouse

    try:
        outcome = str(warehouse(**parameters)["status"])
    except Exception as exc:  # a failed run, or a failed quality gate (whose facts are published)
        outcome = f"failed: {exc}"
    with engine.connect() as conn:
        run_id = conn.execute(sa.text("SELECT max(run_id) FROM ctl.run")).scalar_one()
        if run_id is None:  # refused before it logged a run (a database not at head, say)
            return 0, False, outcome
        published = conn.execute(sa.text("SELECT count(*) FROM ctl.publication WHERE run_id = :r"), {"r": run_id})
        return int(run_id), bool(published.scalar_one()), outcome


def replay(
    engine: sa.Engine,
    scenario: Scenario,
    report: Callable[[str], None] = lambda line: None,
) -> Failure | None:
    """Build the source, then apply each change at its commit and do each run at its instant, comparing the
    warehouse with the model after each; the first difference (or a run that did not publish) is returned."""
    with engine.begin() as conn:
        create_source(conn, scenario.start)
    history = History()
    changes = sorted((c for day in scenario.days for c in day.changes), key=lambda c: c.commit)
    runs = sorted(((day.number, run) for day in scenario.days for run in day.runs), key=lambda dr: dr[1].at)
    applied = 0
    for day, plan in runs:
        with engine.begin() as conn:
            while applied < len(changes) and changes[applied].commit <= plan.at:
                apply_change(conn, scenario, changes[applied])
                applied += 1
        as_of = scenario.instant(plan.at)
        backfill_from = None
        if plan.backfill_days:
            backfill_from = local_date(as_of, history.settings.business_timezone) - timedelta(days=plan.backfill_days)
        parameters = {"as_of": as_of, "full_refresh": plan.full_refresh, "backfill_from": backfill_from}
        source = snapshot(engine)
        if plan.fault:
            with engine.begin() as conn:
                _install_fault(conn, plan.fault)
            try:
                _, published, outcome = _run_once(engine, parameters)
            finally:
                with engine.begin() as conn:
                    _remove_fault(conn, plan.fault)
            if "injected fault" not in outcome:
                return Failure(day, plan, f"the fault in {plan.fault!r} did not fail the run: {outcome}")
        for attempt in range(2 if plan.repeat else 1):
            run_id, published, outcome = _run_once(engine, parameters)
            if not published:
                return Failure(day, plan, f"run {run_id} (attempt {attempt + 1}) published nothing: {outcome}")
        history.runs.append(Run(as_of=as_of, source=source, full_refresh=plan.full_refresh,
                                backfill_from=backfill_from))  # fmt: skip
        comparing = time.perf_counter()
        with engine.connect() as conn:
            found = compare.differences(compare.expected(history), compare.actual(conn))
        compared = time.perf_counter() - comparing
        report(f"day {day:>2} run {len(history.runs):>2} as of {as_of:%Y-%m-%d %H:%M}Z"
               f"{' fault in ' + plan.fault if plan.fault else ''}{' full refresh' if plan.full_refresh else ''}"
               f"{f' backfill from {backfill_from}' if backfill_from else ''}{' repeated' if plan.repeat else ''}: "
               f"{len(found)} differences ({compared:.1f} s to compare)")  # fmt: skip
        if found:
            return Failure(day, plan, compare.describe(found), frozenset(d.object for d in found))
    return None
