"""The warehouse flow under a deployment: prefect.yaml deployed to a real Prefect API with
`prefect deploy`, run by a process worker, as in production."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import REPO_ROOT
from sqlalchemy.engine import URL

from flows import demo_source

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


def _run_once(prefect: list[str], env: dict[str, str], cwd: Path) -> str:
    """One poll of a process worker: it runs what is scheduled and exits (0 even when a run failed)."""
    worker = subprocess.run(
        [*prefect, "worker", "start", "--pool", "pm-warehouse", "--type", "process", "--run-once"],
        env=env, capture_output=True, text=True, timeout=300, cwd=cwd,
    )  # fmt: skip
    return worker.stdout[-3000:] + worker.stderr[-3000:]


def test_a_process_worker_runs_the_deployed_flow_with_the_forms_parameters(
    upgraded: sa.Engine, database_url: URL, tmp_path: Path
) -> None:
    """prefect.yaml deployed with `prefect deploy`, run as the UI's custom-run form and `prefect deployment run
    --param` send parameters (JSON values: an ISO instant, booleans, a date), by a process worker."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=AS_OF.replace(tzinfo=None))
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="pm-warehouse", type="process"), overwrite=True)
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_HOME": str(tmp_path / "worker-home"),
        "PMW_WAREHOUSE_URL": database_url.render_as_string(hide_password=False),
    }
    prefect = [sys.executable, "-m", "prefect", "--no-prompt"]
    deployed = subprocess.run(
        [*prefect, "deploy", "--all"], env=env, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT
    )
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    with get_client(sync_client=True) as client:
        (deployment,) = client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["warehouse-daily"]))
        )
    assert set(deployment.parameter_openapi_schema["properties"]) >= {"as_of", "full_refresh", "backfill_from"}
    assert "facts" in (deployment.description or "")  # the description says what the run does

    # 1. the first run, as of the seed's instant, from the form
    first = run_deployment(name="warehouse/warehouse-daily", parameters={"as_of": AS_OF.isoformat()}, timeout=0)
    worker = _run_once(prefect, env, tmp_path)
    # 2. a day later, a full refresh with a backfill, from the command line's --param
    demo_source.advance(upgraded, days=1)
    later = AS_OF + timedelta(days=1)
    sent = subprocess.run(
        [*prefect, "deployment", "run", "warehouse/warehouse-daily", "--param", f"as_of={later.isoformat()}",
         "--param", "full_refresh=true", "--param", "backfill_from=2026-10-29"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout[-3000:] + sent.stderr[-3000:]
    worker += _run_once(prefect, env, tmp_path)
    # 3. a run the flow refuses: a source name that does not exist
    failing = run_deployment(name="warehouse/warehouse-daily", parameters={"sources": ["no_such_source"]}, timeout=0)
    worker += _run_once(prefect, env, tmp_path)

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["warehouse-daily"]))
        )
        states = {str(run.id): run.state for run in runs}
    second_id = next(run_id for run_id in states if run_id not in (str(first.id), str(failing.id)))
    assert states[str(first.id)].is_completed(), worker  # type: ignore[union-attr]
    assert states[second_id].is_completed(), worker  # type: ignore[union-attr]
    refused = states[str(failing.id)]
    assert refused is not None and refused.is_failed()
    assert "no_such_source" in (refused.message or "") and "issue_categories" in (refused.message or "")

    with upgraded.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT status, flow_run_id, as_of_at, parameters FROM ctl.run ORDER BY run_id")
        ).all()
        issues = conn.execute(sa.text("SELECT count(*) FROM dim.issue WHERE is_current AND issue_sk <> -1")).scalar()
        backfilled = conn.execute(sa.text("SELECT min(snapshot_date_key) FROM fact.issue_daily")).scalar()
    assert [(r.status, r.flow_run_id, r.as_of_at) for r in rows] == [
        ("success", str(first.id), AS_OF),
        ("success", second_id, later),
    ]  # the refused run wrote no row: it was refused before it began
    assert rows[1].parameters["full_refresh"] is True and rows[1].parameters["backfill_from"] == "2026-10-29"
    assert issues > 10_000 and backfilled == 20261029
