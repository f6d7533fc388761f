"""The Prefect artifact each run publishes: its steps with row counts, and its quality results.

Read back from ``ctl`` (the record of what happened), so the Prefect UI and `pmw status` agree.
Outside a flow run (a plain function call, no Prefect API) there is nowhere to publish: skipped.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from flows.runs import step_details

log = logging.getLogger(__name__)
ARTIFACT_KEY = "warehouse-run"


def run_report(engine: sa.Engine, run_id: int) -> str:
    """Markdown: the run's outcome, a table of steps and row counts, and a table of quality results."""
    with engine.connect() as conn:
        run = conn.execute(
            sa.text("SELECT status, as_of_at, error_text FROM ctl.run WHERE run_id = :r"), {"r": run_id}
        ).one()
        steps = conn.execute(
            sa.text(
                "SELECT step_name, status, rows_read, rows_inserted, rows_updated, rows_deleted, duration_ms "
                "FROM ctl.run_step WHERE run_id = :r ORDER BY run_step_id"
            ),
            {"r": run_id},
        ).all()
        checks = conn.execute(
            sa.text(
                "SELECT check_name, severity, status, failing_count, threshold, sample_keys "
                "FROM ctl.data_quality_result WHERE run_id = :r ORDER BY status DESC, severity, check_name"
            ),
            {"r": run_id},
        ).all()
    lines = [f"# Warehouse run {run_id}: {run.status}", "", f"As of {run.as_of_at.isoformat()}."]
    if run.error_text:
        lines += ["", f"Error: {run.error_text}"]
    details = step_details(engine, run_id)
    lines += [
        "",
        "## Steps",
        "",
        "Inserted, updated and deleted: rows physically written, over every table the step wrote.",
    ]
    lines += ["", "| step | status | read | inserted | updated | deleted | ms | tables and meanings |"]
    lines += ["| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    lines += [
        f"| {s.step_name} | {s.status} | {s.rows_read:,} | {s.rows_inserted:,} | {s.rows_updated:,} | "
        f"{s.rows_deleted:,} | {s.duration_ms or 0:,} | {'; '.join(details.get(s.step_name, []))} |"
        for s in steps
    ]
    lines += ["", "## Quality checks", "", "| check | severity | status | failing | threshold | sample |"]
    lines += ["| --- | --- | --- | ---: | ---: | --- |"]
    lines += [
        f"| {c.check_name} | {c.severity} | {c.status} | {c.failing_count:,} | {c.threshold:,} | "
        f"{(c.sample_keys or '').replace('|', '/')} |"
        for c in checks
    ]
    return "\n".join(lines) + "\n"


def publish_run(engine: sa.Engine, run_id: int) -> None:
    """Publish the run's report as a markdown artifact of the current flow run."""
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is None:
        return
    try:
        create_markdown_artifact(
            markdown=run_report(engine, run_id), key=ARTIFACT_KEY, description=f"Warehouse run {run_id}"
        )
    except Exception as exc:  # the run's outcome is already in ctl: a report that cannot be published is no failure
        log.warning("could not publish the artifact of run %s: %s", run_id, type(exc).__name__)
