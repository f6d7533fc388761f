"""The warehouse flow under a deployment: prefect.yaml deployed to a real Prefect API with
`prefect deploy`, run by a process worker, as in production."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import REPO_ROOT
from sqlalchemy.engine import URL

from flows import demo_source

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


def test_a_process_worker_runs_the_deployed_flow(upgraded: sa.Engine, database_url: URL, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
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
    flow_run = run_deployment(
        name="warehouse/warehouse-daily", parameters={"parameters": {"as_of": AS_OF.isoformat()}}, timeout=0
    )
    worker = subprocess.run(
        [*prefect, "worker", "start", "--pool", "pm-warehouse", "--type", "process", "--run-once"],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    # --run-once exits 0 even when the run failed: the run's own state is what counts.
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run.id).state
    assert state is not None and state.is_completed(), worker.stdout[-3000:] + worker.stderr[-3000:]
    with upgraded.connect() as conn:
        row = conn.execute(sa.text("SELECT status, flow_run_id, as_of_at FROM ctl.run")).one()
        issues = conn.execute(sa.text("SELECT count(*) FROM dim.issue WHERE is_current AND issue_sk <> -1")).scalar()
    assert (row.status, row.flow_run_id, row.as_of_at) == ("success", str(flow_run.id), AS_OF)
    assert issues == 10_000
