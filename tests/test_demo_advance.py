"""`pmw source advance`: every kind of change the warehouse must cope with, asserted on the data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from conftest import create_database, drop_database
from sqlalchemy.engine import URL

from flows import demo_source

AS_OF = datetime(2026, 11, 1)
ISSUES = 'dbo."vw_ProjectManagement_AllIssues"'
OPEN_STATUSES = "('open', 'pending', 'in_review', 'Open', 'In progress', 'Ready to check')"


def _copy(conn: sa.Connection, schema: str) -> None:
    conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    for table in (*demo_source.SOURCE_TABLES, "vw_ProjectManagement_AllIssues"):
        conn.exec_driver_sql(f'CREATE TABLE {schema}."{table}" AS SELECT * FROM dbo."{table}"')


@pytest.fixture(scope="module")
def history(server_admin_url: URL) -> Iterator[sa.Engine]:
    """Seeded at AS_OF; schema `before` = the seed, `day1` = after one day; dbo = after 14 days."""
    url = create_database(server_admin_url, prefix="pmw_advance")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    demo_source.seed(engine, scale=1, seed_value=42, anchor=AS_OF)
    with engine.begin() as conn:
        _copy(conn, "before")
    demo_source.advance(engine, days=1)
    with engine.begin() as conn:
        _copy(conn, "day1")
    demo_source.advance(engine, days=13)
    yield engine
    engine.dispose()
    drop_database(server_admin_url, url)


def count(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(sql, execution_options={"no_parameters": True}).scalar() or 0)


JOIN_ISSUES = f"""
    FROM before."vw_ProjectManagement_AllIssues" AS b
    JOIN {ISSUES} AS a USING (source, source_project_id, source_issue_id)"""


@pytest.mark.parametrize(
    ("change", "sql"),
    [
        (
            "new issues",
            f"""SELECT count(*) FROM {ISSUES} AS a WHERE NOT EXISTS (
            SELECT 1 FROM before."vw_ProjectManagement_AllIssues" AS b WHERE (b.source, b.source_project_id,
            b.source_issue_id) = (a.source, a.source_project_id, a.source_issue_id))""",
        ),
        (
            "edits that are neither creation nor closure",
            f"""SELECT count(*) {JOIN_ISSUES} WHERE a.status = b.status AND a.closed_at IS NOT DISTINCT FROM b.closed_at
            AND (a.title, a.priority, a.assignee) IS DISTINCT FROM (b.title, b.priority, b.assignee)
            AND a.source_updated_at > b.source_updated_at""",
        ),
        (
            "status changes between open statuses",
            f"""SELECT count(*) {JOIN_ISSUES} WHERE a.status <> b.status AND a.status IN {OPEN_STATUSES}
            AND b.status IN {OPEN_STATUSES}""",
        ),
        ("closures", f"SELECT count(*) {JOIN_ISSUES} WHERE b.closed_at IS NULL AND a.closed_at IS NOT NULL"),
        (
            "reopenings",
            f"""SELECT count(*) {JOIN_ISSUES} WHERE b.closed_at IS NOT NULL AND a.closed_at IS NULL
            AND a.status IN {OPEN_STATUSES}""",
        ),
        (
            "deletions",
            f"SELECT count(*) {JOIN_ISSUES} WHERE NOT b.is_deleted AND a.is_deleted AND a.deleted_at IS NOT NULL",
        ),
        (
            "changed rows sharing one timestamp",
            f"""SELECT count(*) FROM (SELECT a.source, a.source_updated_at {JOIN_ISSUES}
            WHERE a.source_updated_at > b.source_updated_at GROUP BY 1, 2 HAVING count(*) > 1) AS shared""",
        ),
        (
            "services whose progress moved without updated_at",
            """SELECT count(*) FROM before."ProjectServices" AS b JOIN dbo."ProjectServices" AS a USING (service_id)
            WHERE a.progress_pct <> b.progress_pct AND a.updated_at IS NOT DISTINCT FROM b.updated_at""",
        ),
        (
            "fee-based services progressing",
            """SELECT count(*) FROM before."ProjectServices" AS b
            JOIN dbo."ProjectServices" AS a USING (service_id)
            WHERE a.unit_type IN ('lump_sum', 'license') AND a.progress_pct > b.progress_pct""",
        ),
        (
            "claims made without updated_at",
            """SELECT count(*) FROM before."ProjectServices" AS b
            JOIN dbo."ProjectServices" AS a USING (service_id)
            WHERE a.claimed_to_date <> b.claimed_to_date AND a.updated_at IS NOT DISTINCT FROM b.updated_at""",
        ),
        (
            "services started",
            """SELECT count(*) FROM before."ProjectServices" AS b
            JOIN dbo."ProjectServices" AS a USING (service_id)
            WHERE b.status = 'planned' AND a.status = 'in_progress'""",
        ),
        (
            "reviews completed",
            """SELECT count(*) FROM before."ServiceReviews" AS b JOIN dbo."ServiceReviews" AS a
            USING (review_id) WHERE b.status IN ('planned', 'in_progress')
            AND a.status IN ('completed', 'report_issued') AND a.actual_issued_at IS NOT NULL""",
        ),
        (
            "reviews cancelled",
            """SELECT count(*) FROM before."ServiceReviews" AS b JOIN dbo."ServiceReviews" AS a
            USING (review_id) WHERE b.status <> 'cancelled' AND a.status = 'cancelled'""",
        ),
        (
            "reviews hard-deleted",
            """SELECT count(*) FROM before."ServiceReviews" AS b
            WHERE NOT EXISTS (SELECT 1 FROM dbo."ServiceReviews" AS a WHERE a.review_id = b.review_id)""",
        ),
        (
            "projects renamed with updated_at set",
            """SELECT count(*) FROM before.projects AS b
            JOIN dbo.projects AS a USING (project_id)
            WHERE a.project_name <> b.project_name AND a.updated_at IS DISTINCT FROM b.updated_at""",
        ),
        (
            "projects renamed without updated_at",
            """SELECT count(*) FROM before.projects AS b
            JOIN dbo.projects AS a USING (project_id)
            WHERE a.project_name <> b.project_name AND a.updated_at IS NOT DISTINCT FROM b.updated_at""",
        ),
        (
            "new projects with NULL updated_at",
            """SELECT count(*) FROM dbo.projects AS a
            WHERE a.updated_at IS NULL AND NOT EXISTS (SELECT 1 FROM before.projects AS b
            WHERE b.project_id = a.project_id)""",
        ),
        (
            "categories edited with updated_at",
            """SELECT count(*) FROM before."IssueCategories" AS b
            JOIN dbo."IssueCategories" AS a USING (category_id)
            WHERE (a.category_name, a.is_active) IS DISTINCT FROM (b.category_name, b.is_active)
            AND a.updated_at > b.updated_at""",
        ),
        (
            "issues re-processed",
            """SELECT count(*) FROM before."ProcessedIssues" AS b
            JOIN dbo."ProcessedIssues" AS a USING (source, source_issue_id)
            WHERE a.processing_version > b.processing_version AND a.processed_at > b.processed_at""",
        ),
        (
            "new issues processed",
            """SELECT count(*) FROM dbo."ProcessedIssues" AS a
            WHERE NOT EXISTS (SELECT 1 FROM before."ProcessedIssues" AS b
            WHERE (b.source, b.source_issue_id) = (a.source, a.source_issue_id))""",
        ),
    ],
)
def test_advance_produces(history: sa.Engine, change: str, sql: str) -> None:
    assert count(history, sql) > 0, change


def test_late_commits_are_stamped_before_rows_already_visible(history: sa.Engine) -> None:
    # Rows ACC changed on day 1 whose change time is older than the newest ACC change visible
    # before day 1 began: an extract that trusted "cursor > watermark" would miss them.
    late = count(
        history,
        """
        SELECT count(*) FROM before."vw_ProjectManagement_AllIssues" AS b
        JOIN day1."vw_ProjectManagement_AllIssues" AS a USING (source, source_project_id, source_issue_id)
        WHERE a.source = 'ACC' AND a.source_updated_at <> b.source_updated_at
            AND a.source_updated_at < (SELECT max(source_updated_at) FROM before."vw_ProjectManagement_AllIssues"
                                       WHERE source = 'ACC')""",
    )
    assert late > 0


def test_revizto_imports_arrive_late_in_local_time(history: sa.Engine) -> None:
    # Day 1 covers [AS_OF, AS_OF + 1 day) UTC; Revizto imports lag 8 hours and store Sydney time
    # (UTC+11 in November): new rows fall in [AS_OF + 3 h, AS_OF + 27 h) as stored values.
    with history.connect() as conn:
        low, high = conn.execute(
            sa.text("""
            SELECT min(a.created_at), max(a.created_at) FROM day1."vw_ProjectManagement_AllIssues" AS a
            WHERE a.source = 'Revizto' AND NOT EXISTS (SELECT 1 FROM before."vw_ProjectManagement_AllIssues" AS b
                WHERE (b.source, b.source_issue_id) = (a.source, a.source_issue_id))""")
        ).one()
        newest_acc = conn.execute(
            sa.text("""
            SELECT max(source_updated_at) FROM day1."vw_ProjectManagement_AllIssues" WHERE source = 'ACC'""")
        ).scalar()
    assert AS_OF + timedelta(hours=3) <= low and high < AS_OF + timedelta(hours=27)
    # Read as UTC (their real instants are 11 h earlier), the import is older than ACC's newest row.
    assert low - timedelta(hours=11) < newest_acc


def test_issue_numbers_stay_unique_per_tracker_project(history: sa.Engine) -> None:
    assert (
        count(
            history,
            f"""SELECT count(*) FROM (SELECT source, source_project_id, issue_id FROM {ISSUES}
        GROUP BY 1, 2, 3 HAVING count(*) > 1) AS d""",
        )
        == 0
    )


def test_the_clock_moves_with_each_day(history: sa.Engine) -> None:
    assert demo_source.clock(history) == AS_OF + timedelta(days=14)
