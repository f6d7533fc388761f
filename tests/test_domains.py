"""Domains of numbers (issue #13, point 4; business-rules.md, Services and reviews): NaN and infinities in any
numeric column, progress outside 0-100, negative fees, rates and claims are quarantined, each reason naming the
column and the value, and the run goes on without them (a quarantined row keeps its current version)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import cloned, seeded_template
from sqlalchemy.engine import URL

from flows import dialects
from flows.domains import NUMERIC_TYPES, check_declarations, domain_rules
from flows.source_schema import column_types
from flows.sources import SOURCES
from flows.warehouse_flow import warehouse

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def seeded(server_admin_url: URL) -> Iterator[URL]:
    with seeded_template(server_admin_url, "pmw_domains_template", AS_OF) as url:
        yield url


@pytest.fixture
def clone(server_admin_url: URL, seeded: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    with cloned(server_admin_url, seeded, monkeypatch) as engine:
        yield engine


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params).all())


def test_every_declared_domain_is_a_numeric_column_of_its_source(clone: sa.Engine) -> None:
    declared = [source for source in SOURCES if source.domains]
    assert {source.name for source in declared} == {"projects", "services"}
    with clone.connect() as conn:
        for source in SOURCES:
            staging = column_types(conn, "stg", source.staging_table)
            assert check_declarations(source, staging) == [], source.name
            numeric = [name for name, kind in staging.items() if kind in NUMERIC_TYPES and name in source.columns]
            # every numeric column has a NaN rule; every declared domain a range rule (PostgreSQL)
            rules = domain_rules(source, numeric, dialects.named("postgresql"))
            assert len(rules) == len(numeric) + len(source.domains)
            # SQL Server's decimal and float hold no NaN: only the ranges, with no PostgreSQL-only literal
            tsql = domain_rules(source, numeric, dialects.named("mssql"))
            assert len(tsql) == len(source.domains) and not any("NaN" in r.predicate for r in tsql)


def test_nan_infinity_and_values_outside_their_domain_are_quarantined_naming_column_and_value(
    clone: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PMW_QUARANTINE_MAX_SHARE", "0.5")
    with clone.begin() as conn:
        services = conn.execute(sa.text('SELECT service_id FROM dbo."ProjectServices" ORDER BY service_id '
                                        "LIMIT 8")).scalars().all()  # fmt: skip
        project = conn.execute(sa.text("SELECT min(project_id) FROM dbo.projects")).scalar_one()
        # a source without its constraints, whose money columns are unconstrained numerics (NaN and, since
        # PostgreSQL 14, infinities fit there, not in the warehouse's numeric(18, 2))
        conn.execute(sa.text('ALTER TABLE dbo."ProjectServices" DROP CONSTRAINT IF EXISTS '
                             '"ProjectServices_progress_pct_check"'))  # fmt: skip
        widened = ", ".join(f"ALTER COLUMN {c} TYPE numeric" for c in ("agreed_fee", "claimed_to_date", "progress_pct"))
        conn.execute(sa.text(f'ALTER TABLE dbo."ProjectServices" {widened}'))
        bad = dict(zip(("agreed_fee = 'NaN'", "claimed_to_date = 'Infinity'", "progress_pct = -20",
                        "progress_pct = 150", "agreed_fee = -500", "claimed_to_date = -10", "unit_rate = -1",
                        "progress_pct = 'NaN'"), services, strict=True))  # fmt: skip
        for change, service in bad.items():
            conn.execute(sa.text(f'UPDATE dbo."ProjectServices" SET {change} WHERE service_id = :s'), {"s": service})
        conn.execute(sa.text("UPDATE dbo.projects SET contract_value = -1 WHERE project_id = :p"), {"p": project})
    result = warehouse(as_of=AS_OF)
    assert result["status"] == "success"
    found = dict(rows(clone, "SELECT business_key, reason FROM ctl.quarantine WHERE source_object = 'services'"))
    s = {change: str(service) for change, service in bad.items()}
    assert found == {
        s["agreed_fee = 'NaN'"]: "agreed_fee NaN is not a number (NaN and infinities never are)",
        s["claimed_to_date = 'Infinity'"]: "claimed_to_date Infinity is not a number (NaN and infinities never are)",
        s["progress_pct = -20"]: "progress_pct -20.00 outside 0-100",
        s["progress_pct = 150"]: "progress_pct 150.00 outside 0-100",
        s["agreed_fee = -500"]: "agreed_fee -500.00 below 0",
        s["claimed_to_date = -10"]: "claimed_to_date -10.00 below 0",
        s["unit_rate = -1"]: "unit_rate -1.00 below 0",
        s["progress_pct = 'NaN'"]: "progress_pct NaN is not a number (NaN and infinities never are)",
    }
    assert rows(clone, "SELECT business_key, reason FROM ctl.quarantine WHERE source_object = 'projects'") == [
        (str(project), "contract_value -1.00 below 0")
    ]
    # nothing that is not a number reached the warehouse: no service of these, no NaN in any monthly total
    # (their reviews point at inferred members, which hold no money)
    assert rows(clone, "SELECT count(*) FROM dim.service WHERE service_id = ANY(:s) AND NOT is_inferred",
                s=list(services)) == [(0,)]  # fmt: skip
    assert rows(clone, "SELECT count(*) FROM dim.service WHERE agreed_fee = 'NaN' OR progress_pct = 'NaN'") == [(0,)]
    assert rows(clone, "SELECT count(*) FROM dim.project WHERE contract_value < 0") == [(0,)]
