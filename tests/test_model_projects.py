"""Service and project facts where they differed from the independent model (issue #14, tests/model/projects.py).

Each test builds the scenario's small base world (tests/model/scenario.py: services 1, 3, 5 and 7 have three
review cycles each, the second one planned four days after the start with no due date), runs the real flow
through Prefect, and checks the rows a controller would read, then the whole group against the model.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from model import projects
from model.history import History, Run, snapshot
from model.scenario import create_source

from flows.warehouse_flow import warehouse

pytestmark = pytest.mark.usefixtures("prefect_harness")

START = datetime(2026, 3, 2, tzinfo=UTC)  # 11:00 on 2 March in Sydney: both runs below fall in March
SERVICE_OBJECTS = ("fact.service_monthly", "mart.service_financials")


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [r._asdict() for r in conn.execute(sa.text(sql), params)]


def _run(engine: sa.Engine, history: History, as_of: datetime) -> None:
    source = snapshot(engine)
    assert warehouse(as_of=as_of)["status"] == "success"
    history.runs.append(Run(as_of=as_of, source=source))


def _service_differences(engine: sa.Engine, history: History) -> list[tuple[str, tuple, object, object]]:
    """(object, key, model row, warehouse row) wherever the service objects differ from the model."""
    want = projects.expected(history)
    with engine.connect() as conn:
        have = projects.actual(conn)
    return [
        (name, key, want[name].get(key), have[name].get(key))
        for name in SERVICE_OBJECTS
        for key in sorted(set(want[name]) | set(have[name]), key=repr)
        if want[name].get(key) != have[name].get(key)
    ]


def test_the_as_of_month_counts_a_review_overdue_once_its_date_passes_with_nothing_else_changed(
    model_warehouse: sa.Engine,
) -> None:
    """Overdue ⇔ COALESCE(due_date, planned_date) < the as-of local date: a later run of the same month must
    count the second cycles (planned 6 March) overdue on 8 March although no service or review changed."""
    with model_warehouse.begin() as conn:
        create_source(conn, START)
    history = History()
    _run(model_warehouse, history, START + timedelta(hours=1))
    _run(model_warehouse, history, START + timedelta(days=6))  # 8 March: nothing changed at the source
    overdue = rows(model_warehouse, """SELECT service_id, reviews_overdue FROM fact.service_monthly
        WHERE month_date_key = 20260301 AND service_id IN (1, 3, 5, 7) ORDER BY service_id""")  # fmt: skip
    assert overdue == [{"service_id": s, "reviews_overdue": 1} for s in (1, 3, 5, 7)]
    mart = rows(model_warehouse, "SELECT sum(reviews_overdue) AS n FROM mart.service_financials WHERE month = :m",
                m=date(2026, 3, 1))  # fmt: skip
    assert mart == [{"n": 4}]
    assert _service_differences(model_warehouse, history) == []


def test_the_as_of_month_follows_a_project_created_and_a_service_deleted_since_the_same_days_last_run(
    model_warehouse: sa.Engine,
) -> None:
    """A project month holds the state at the as-of: a project created since the last run of the same day has
    a row before it has issues or services, and a service deleted since then no longer counts under its
    project, although neither writes a daily or service snapshot row."""
    with model_warehouse.begin() as conn:
        create_source(conn, START)
    history = History()
    _run(model_warehouse, history, START + timedelta(hours=1))
    with model_warehouse.begin() as conn:
        conn.exec_driver_sql('DELETE FROM dbo."ProjectServices" WHERE service_id = 6')  # project 2's second service
        conn.exec_driver_sql("INSERT INTO dbo.projects (project_id, project_name, client_id, type_id, status, "
                             "created_at) VALUES (9, 'Empty', 1, 1, 'active', '2026-03-02 01:30')")  # fmt: skip
    _run(model_warehouse, history, START + timedelta(hours=3))  # the same local day: no new daily rows
    months = rows(model_warehouse, """SELECT project_id, services_in_progress, issues_total, earned_value
        FROM fact.project_monthly WHERE month_date_key = 20260301 AND project_id IN (2, 9)
        ORDER BY project_id""")  # fmt: skip
    assert months == [
        {"project_id": 2, "services_in_progress": 1, "issues_total": 4, "earned_value": 0},  # its tracker name
        {"project_id": 9, "services_in_progress": 0, "issues_total": 0, "earned_value": 0},
    ]
    overview = rows(model_warehouse, "SELECT project_name FROM mart.project_overview WHERE project_id = 9")
    assert overview == [{"project_name": "Empty"}]
