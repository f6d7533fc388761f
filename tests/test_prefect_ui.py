"""What a user sees in the Prefect UI after `pmw run`s, read in headless Chromium from the local Prefect
server: a run's page lists its task runs and its `warehouse-run` artifact; a failed run's page shows the
failing task and the error. Screenshots are kept in the test's temporary directory; the assertions read
the page's text, never pixels."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from browser import Browser, missing
from conftest import pmw

from flows import demo_source, prefect_server

pytestmark = pytest.mark.slow
FAILING_STEP = "warehouse.load_dim_issue"
PLANTED = "planted failure for the UI test"


@pytest.fixture
def browser(tmp_path: Path):  # type: ignore[no-untyped-def]
    reason = missing()
    if reason:
        pytest.skip(reason)
    session = Browser(tmp_path / "chromium-profile")
    yield session
    session.close()


def _api(ui: str, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """A filter call of the Prefect server's REST API, as the UI makes it."""
    request = urllib.request.Request(
        f"{ui}/api{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return list(json.load(response))


def _flow_runs(engine: sa.Engine) -> list[sa.Row]:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT run_id, status, flow_run_id FROM ctl.run ORDER BY run_id")))


def test_the_ui_shows_a_runs_task_runs_and_report_and_a_failed_runs_failing_task(
    upgraded: sa.Engine, tmp_path: Path, browser: Browser
) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=datetime(2026, 11, 1))
    env = {"PREFECT_HOME": str(tmp_path / "client")}
    assert pmw("run", "--as-of", "2026-11-01T00:00:00Z", cwd=tmp_path, env=env).returncode == 0
    with upgraded.begin() as conn:  # the next run's step fails as it records its success
        conn.exec_driver_sql(f"""CREATE FUNCTION public.ui_test_fault() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{PLANTED}'; END $$""", execution_options={"no_parameters": True})  # fmt: skip
        conn.exec_driver_sql(f"""CREATE TRIGGER ui_test_fault BEFORE UPDATE ON ctl.run_step FOR EACH ROW
            WHEN (NEW.step_name = '{FAILING_STEP}' AND NEW.status = 'success')
            EXECUTE FUNCTION public.ui_test_fault()""")  # fmt: skip
    demo_source.advance(upgraded, days=1)
    failed = pmw("run", cwd=tmp_path, env=env)
    assert failed.returncode != 0 and PLANTED in failed.stdout + failed.stderr
    (good, bad) = _flow_runs(upgraded)
    assert (good.status, bad.status) == ("success", "failed")
    ui = prefect_server.status(tmp_path / "pmw-home").ui_url

    # the successful run: every task run Prefect holds for it, by name, and its report
    task_runs = _api(ui, "/task_runs/filter", {"flow_runs": {"id": {"any_": [good.flow_run_id]}}})
    names = sorted(run["name"] for run in task_runs)
    assert len(names) > 30 and "quality checks" in names and FAILING_STEP in names
    browser.open(f"{ui}/runs/flow-run/{good.flow_run_id}")
    browser.wait_for_text("Completed", "Task Runs")
    browser.screenshot(tmp_path / "flow-run.png")
    browser.click("Task Runs")
    page = browser.wait_for_text(f"{len(names)} Task runs", *names, scrolling=True)
    browser.screenshot(tmp_path / "flow-run-task-runs.png")
    assert f"{len(names)} Task runs" in page and [name for name in names if name not in page] == [], page[-3000:]
    browser.click("Artifacts")
    page = browser.wait_for_text("warehouse-run")
    browser.screenshot(tmp_path / "flow-run-artifacts.png")
    assert "warehouse-run" in page, page[:3000]
    # the report itself, opened from there as a user would: failures and quarantines first, then the steps
    browser.click("warehouse-run")
    page = browser.wait_for_text("Failed checks", "Checks that passed")
    browser.screenshot(tmp_path / "artifact.png")
    assert f"Warehouse run {good.run_id}: success" in page and "source rows quarantined" in page, page[:3000]
    assert page.index("Failed checks") < page.index("Steps") < page.index("Checks that passed"), page[:3000]

    # the failed run: its state, the failing task, the error text
    browser.open(f"{ui}/runs/flow-run/{bad.flow_run_id}")
    page = browser.wait_for_text("Failed", PLANTED)
    browser.screenshot(tmp_path / "failed-run.png")
    assert "Failed" in page and PLANTED in page, page[:3000]
    browser.click("Task Runs")
    page = browser.wait_for_text(FAILING_STEP, "Failed")
    browser.screenshot(tmp_path / "failed-run-task-runs.png")
    assert FAILING_STEP in page and "Failed" in page, page[:3000]
