"""The demo operational database: every object and quirk of source-contract.md, determinism, and
each kind of change `advance` must produce, asserted on the data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from conftest import create_database, drop_database
from sqlalchemy.engine import URL

from flows import demo_source
from flows.errors import SourceError

AS_OF = datetime(2026, 11, 1)

# source-contract.md, object by object (business key first).
CONTRACT = {
    "clients": "client_id client_name contact_name contact_email contact_phone address city state postcode country",
    "project_types": "type_id type_name",
    "users": "user_id name role email created_at",
    "projects": "project_id project_name client_id type_id status priority start_date end_date area_hectares city "
    "state contract_value agreed_fee created_at updated_at",
    "project_aliases": "pm_project_id alias_name created_at",
    "ProjectServices": "service_id project_id phase service_code service_name unit_type unit_qty unit_rate "
    "lump_sum_fee agreed_fee status progress_pct claimed_to_date assigned_user_id created_at updated_at",
    "ServiceReviews": "review_id service_id cycle_no planned_date due_date status weight_factor disciplines "
    "deliverables actual_issued_at assigned_user_id",
    "IssueCategories": "category_id category_name parent_category_id category_level is_active created_at updated_at",
    "issue_status_map": "source_system raw_status normalized_status is_closed",
    "issue_priority_map": "source_system raw_priority normalized_priority",
    "vw_ProjectManagement_AllIssues": "source issue_id source_issue_id source_project_id pm_project_id project_name "
    "title status priority assignee author created_at closed_at source_updated_at is_deleted deleted_at",
    "ProcessedIssues": "source source_issue_id urgency_score complexity_score sentiment_score "
    "categorization_confidence discipline_category_id primary_category_id secondary_category_id resolution_days "
    "is_recurring comment_count processed_at processing_version",
}


def _engine_on_new_db(admin: URL) -> tuple[sa.Engine, URL]:
    url = create_database(admin, prefix="pmw_source")
    return sa.create_engine(url, poolclass=sa.pool.NullPool), url


@pytest.fixture(scope="module")
def seeded(server_admin_url: URL) -> Iterator[sa.Engine]:
    engine, url = _engine_on_new_db(server_admin_url)
    demo_source.seed(engine, scale=1, seed_value=42, anchor=AS_OF)
    yield engine
    engine.dispose()
    drop_database(server_admin_url, url)


def scalar(engine: sa.Engine, sql: str) -> object:
    with engine.connect() as conn:
        return conn.exec_driver_sql(sql, execution_options={"no_parameters": True}).scalar()


def test_every_contract_object_exists_with_its_columns(seeded: sa.Engine) -> None:
    with seeded.connect() as conn:
        for table, columns in CONTRACT.items():
            actual = conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'dbo' "
                    "AND table_name = :t ORDER BY ordinal_position"
                ),
                {"t": table},
            ).scalars()
            assert list(actual) == columns.split(), table
        kind = conn.execute(
            sa.text(
                "SELECT table_type FROM information_schema.tables WHERE table_name = 'vw_ProjectManagement_AllIssues'"
            )
        ).scalar()
        assert kind == "VIEW"


def test_scale_one_is_a_demo_sized_company(seeded: sa.Engine) -> None:
    counts = demo_source.row_counts(seeded)
    assert counts["projects"] == 20 and counts["vw_ProjectManagement_AllIssues"] == 10_000
    assert all(count > 0 for count in counts.values()), counts


@pytest.mark.parametrize(
    ("quirk", "sql"),
    [
        ("projects with NULL updated_at", "SELECT count(*) FROM dbo.projects WHERE updated_at IS NULL"),
        ("service updated_at never moves", 'SELECT count(*) FROM dbo."ProjectServices" WHERE updated_at = created_at'),
        ("services in progress", """SELECT count(*) FROM dbo."ProjectServices" WHERE status = 'in_progress'"""),
        (
            "duplicate project names",
            "SELECT count(*) FROM (SELECT project_name FROM dbo.projects GROUP BY 1 HAVING count(*) > 1) AS d",
        ),
        (
            "an issue number used in many projects",
            """SELECT count(*) FROM (SELECT issue_id FROM dbo."vw_ProjectManagement_AllIssues"
            GROUP BY issue_id HAVING count(DISTINCT source_project_id) > 5) AS n""",
        ),
        ("ACC issues", """SELECT count(*) FROM dbo."vw_ProjectManagement_AllIssues" WHERE source = 'ACC'"""),
        ("Revizto issues", """SELECT count(*) FROM dbo."vw_ProjectManagement_AllIssues" WHERE source = 'Revizto'"""),
        (
            "issues with no PM project",
            """SELECT count(*) FROM dbo."vw_ProjectManagement_AllIssues" WHERE pm_project_id IS NULL""",
        ),
        (
            "unmapped issues whose project name matches exactly one project",
            """SELECT count(*) FROM dbo."vw_ProjectManagement_AllIssues" AS i WHERE i.pm_project_id IS NULL
            AND (SELECT count(*) FROM dbo.projects AS p WHERE p.project_name = i.project_name) = 1""",
        ),
        (
            "unmapped issues whose project name is ambiguous",
            """SELECT count(*) FROM dbo."vw_ProjectManagement_AllIssues" AS i WHERE i.pm_project_id IS NULL
            AND (SELECT count(*) FROM dbo.projects AS p WHERE p.project_name = i.project_name) > 1""",
        ),
        ("re-processed analytics rows", 'SELECT count(*) FROM dbo."ProcessedIssues" WHERE processing_version > 1'),
        (
            "soft-deleted issues",
            """SELECT count(*) FROM dbo."vw_ProjectManagement_AllIssues" WHERE is_deleted AND deleted_at IS NOT NULL""",
        ),
        (
            "rows sharing one change timestamp",
            """SELECT count(*) FROM (SELECT source, source_updated_at FROM dbo."vw_ProjectManagement_AllIssues"
            GROUP BY 1, 2 HAVING count(*) > 1) AS s""",
        ),
        (
            "raw priorities of both styles",
            """SELECT count(DISTINCT priority) FROM dbo."vw_ProjectManagement_AllIssues"
            WHERE priority IN ('Blocker', 'L1 - Critical', 'Minor')""",
        ),
        (
            "raw priorities the map lacks (business-rule fallback)",
            """SELECT count(*) FROM dbo."vw_ProjectManagement_AllIssues" AS i WHERE i.priority IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM dbo.issue_priority_map AS m
                WHERE m.source_system = i.source AND m.raw_priority = i.priority)""",
        ),
        (
            "completed reviews with an actual issue time",
            """SELECT count(*) FROM dbo."ServiceReviews" WHERE status IN ('completed', 'report_issued', 'closed')
            AND actual_issued_at IS NOT NULL""",
        ),
        (
            "overdue reviews",
            """SELECT count(*) FROM dbo."ServiceReviews" WHERE status IN ('planned', 'in_progress')
            AND COALESCE(due_date, planned_date) < DATE '2026-11-01'""",
        ),
        ("cancelled reviews", """SELECT count(*) FROM dbo."ServiceReviews" WHERE status = 'cancelled'"""),
        ("reviews with no due date", 'SELECT count(*) FROM dbo."ServiceReviews" WHERE due_date IS NULL'),
        (
            "over-claimed services (negative variance)",
            'SELECT count(*) FROM dbo."ProjectServices" WHERE claimed_to_date > agreed_fee * progress_pct / 100',
        ),
        (
            "unicode text",
            """SELECT count(*) FROM dbo."vw_ProjectManagement_AllIssues" WHERE title LIKE '%≥%'
            OR author LIKE '%ü%'""",
        ),
    ],
)
def test_the_source_has_the_contract_quirk(seeded: sa.Engine, quirk: str, sql: str) -> None:
    assert int(scalar(seeded, sql) or 0) > 0, quirk  # type: ignore[arg-type]


def test_reviews_have_no_change_column(seeded: sa.Engine) -> None:
    with seeded.connect() as conn:
        columns = set(
            conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'dbo' "
                    "AND table_name = 'ServiceReviews'"
                )
            ).scalars()
        )
    assert "review_id" in columns
    assert not {c for c in columns if c.startswith(("updated", "modified")) or c in ("rowversion", "timestamp")}


def test_three_level_categories_with_repeated_names(seeded: sa.Engine) -> None:
    assert scalar(seeded, 'SELECT count(DISTINCT category_level) FROM dbo."IssueCategories"') == 3
    assert (
        scalar(
            seeded,
            """SELECT count(*) FROM dbo."IssueCategories" c JOIN dbo."IssueCategories" p
        ON p.category_id = c.parent_category_id WHERE p.category_level <> c.category_level - 1""",
        )
        == 0
    )
    repeated = 'SELECT count(*) FROM (SELECT category_name FROM dbo."IssueCategories" GROUP BY 1 HAVING count(*) > 1) r'
    assert int(scalar(seeded, repeated)) > 0  # type: ignore[arg-type]


def test_timestamps_carry_no_offset(seeded: sa.Engine) -> None:
    with seeded.connect() as conn:
        types = conn.execute(sa.text(
            "SELECT DISTINCT data_type FROM information_schema.columns WHERE table_schema = 'dbo' "
            "AND column_name ~ '_(at|local)$'"
        )).scalars().all()  # fmt: skip
    assert types == ["timestamp without time zone"]  # like SQL Server datetime2: UTC or local by convention


def test_progress_of_review_services_is_maintained_by_the_trigger(seeded: sa.Engine) -> None:
    mismatches = scalar(
        seeded,
        """
        SELECT count(*) FROM dbo."ProjectServices" AS s
        JOIN LATERAL (
            SELECT COALESCE(round(100 * sum(r.weight_factor) FILTER (WHERE r.status IN
                ('completed', 'report_issued', 'closed')) / NULLIF(sum(r.weight_factor)
                FILTER (WHERE r.status <> 'cancelled'), 0), 2), 0) AS expected
            FROM dbo."ServiceReviews" AS r WHERE r.service_id = s.service_id
        ) AS e ON TRUE
        WHERE s.unit_type IN ('review', 'audit') AND s.progress_pct <> e.expected""",
    )
    assert mismatches == 0
    assert (
        int(
            scalar(
                seeded,
                """SELECT count(*) FROM dbo."ProjectServices"
        WHERE unit_type = 'review' AND progress_pct BETWEEN 1 AND 99""",
            )
        )
        > 0
    )  # type: ignore[arg-type]


def _fingerprint(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {
            table: conn.exec_driver_sql(
                f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM dbo.\"{table}\" AS t"
            ).scalar()
            for table in demo_source.SOURCE_TABLES
        }


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(
    server_admin_url: URL, seeded: sa.Engine
) -> None:
    engines = []
    try:
        same, same_url = _engine_on_new_db(server_admin_url)
        other, other_url = _engine_on_new_db(server_admin_url)
        engines = [(same, same_url), (other, other_url)]
        demo_source.seed(same, scale=1, seed_value=42, anchor=AS_OF)
        demo_source.seed(other, scale=1, seed_value=43, anchor=AS_OF)
        reference = _fingerprint(seeded)
        assert _fingerprint(same) == reference
        differing = {t for t, h in _fingerprint(other).items() if h != reference[t]}
        assert {"projects", "acc_issues", "revizto_issues", "ProcessedIssues", "ServiceReviews"} <= differing
        demo_source.advance(same, days=2)
        demo_source.advance(other, days=2)
        again, again_url = _engine_on_new_db(server_admin_url)
        engines.append((again, again_url))
        demo_source.seed(again, scale=1, seed_value=42, anchor=AS_OF)
        demo_source.advance(again, days=1)
        demo_source.advance(again, days=1)
        assert _fingerprint(again) == _fingerprint(same)  # advance is deterministic too
    finally:
        for engine, url in engines:
            engine.dispose()
            drop_database(server_admin_url, url)


def test_seeding_twice_is_refused_unless_replaced(seeded: sa.Engine) -> None:
    with pytest.raises(SourceError, match=r"already exists.*--replace"):
        demo_source.seed(seeded, scale=1, seed_value=42, anchor=AS_OF)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"scale": 0}, "--scale 0 is out of range"), ({"seed_value": -1}, "--seed -1 is out of range")],
)
def test_bad_arguments_are_refused(server_admin_url: URL, kwargs: dict[str, int], message: str) -> None:
    engine, url = _engine_on_new_db(server_admin_url)
    try:
        with pytest.raises(SourceError, match=message):
            demo_source.seed(engine, **{"scale": 1, **kwargs})  # type: ignore[arg-type]
        assert not demo_source.is_seeded(engine)  # nothing half-written
    finally:
        engine.dispose()
        drop_database(server_admin_url, url)


def test_advance_needs_a_seeded_source(server_admin_url: URL) -> None:
    engine, url = _engine_on_new_db(server_admin_url)
    try:
        with pytest.raises(SourceError, match="pmw source seed"):
            demo_source.advance(engine, days=1)
    finally:
        engine.dispose()
        drop_database(server_admin_url, url)
