"""The Prefect artifact each run publishes: its steps with row counts, and its quality results.

Read back from ``ctl`` (the record of what happened), so the Prefect UI and `pmw status` agree.
Outside a flow run (a plain function call, no Prefect API) there is nowhere to publish: skipped.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from flows.runs import quality_results, quarantine_summary, step_details

log = logging.getLogger(__name__)
ARTIFACT_KEY = "warehouse-run"


def run_report(engine: sa.Engine, run_id: int) -> str:
    """Markdown: the run's outcome; what needs attention (failed checks, quarantined rows); the steps with
    their row counts; then the checks that passed."""
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
        checks = quality_results(conn, run_id)
        quarantined = quarantine_summary(conn, run_id)
    failed = [c for c in checks if c.status != "pass"]
    lines = [f"# Warehouse run {run_id}: {run.status}", "", f"As of {run.as_of_at.isoformat()}."]
    if run.error_text:
        lines += ["", f"Error: {run.error_text}"]
    lines += ["", f"{len(checks) - len(failed)} checks passed, {len(failed)} failed; "
              f"{sum(q.row_count for q in quarantined):,} source rows quarantined."]  # fmt: skip
    if failed:
        lines += ["", "## Failed checks", "", *_check_table(failed)]
    if quarantined:
        lines += ["", "## Quarantined rows", "", "Rejected as bad input and kept in `ctl.quarantine` (not loaded).", ""]
        lines += ["| source | reason | rows | first key |", "| --- | --- | ---: | --- |"]
        lines += [
            f"| {q.source_object} | {_cell(q.reason)} | {q.row_count:,} | {_cell(q.first_key or '')} |"
            for q in quarantined
        ]
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
    passed = [c for c in checks if c.status == "pass"]
    if passed:
        lines += ["", "## Checks that passed", "", *_check_table(passed)]
    return "\n".join(lines) + "\n"


def _check_table(checks: list[sa.Row[Any]]) -> list[str]:
    return [
        "| check | severity | status | failing | threshold | sample |",
        "| --- | --- | --- | ---: | ---: | --- |",
        *(
            f"| {c.check_name} | {c.severity} | {c.status} | {c.failing_count:,} | {c.threshold:,} | "
            f"{_cell(c.sample_keys or '')} |"
            for c in checks
        ),
    ]


def _cell(text: str) -> str:
    """Text for a markdown table cell: a | would end the cell."""
    return text.replace("|", "/")


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
