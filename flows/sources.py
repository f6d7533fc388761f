"""The source objects the warehouse extracts, declared as data.

One entry per source object: where it lives, its business key, the columns pulled, how changes are
found (``cursor`` on a trustworthy change column, or ``full_compare`` of the whole table), whether
its timestamps are UTC or the source server's local time, and what to do with a NULL cursor. Adding
a source is adding an entry here, its staging table (a revision) and its procedure.

Names are the real SQL Server names (source-contract.md); a site with other names edits this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

Strategy = Literal["cursor", "full_compare"]
TimeSemantics = Literal["utc", "local"]
NullCursorPolicy = Literal["include", "reject"]


@dataclass(frozen=True)
class Partition:
    """A slice of a source object with its own watermark (one issue tracker, say)."""

    value: str
    time_semantics: TimeSemantics


@dataclass(frozen=True)
class Domain:
    """The values a numeric column may hold (business-rules.md, Domains); a staged row outside is quarantined
    with the column and value named. NaN and infinities are refused in every numeric column, declared or not."""

    column: str
    minimum: Decimal | None = Decimal(0)  # None: no lower bound
    maximum: Decimal | None = None


@dataclass(frozen=True)
class SourceObject:
    """How one operational object is extracted into its staging table."""

    name: str
    source_schema: str
    source_table: str
    business_key: tuple[str, ...]
    columns: tuple[str, ...]
    strategy: Strategy
    time_semantics: TimeSemantics = "utc"
    cursor_column: str | None = None
    partition_column: str | None = None
    partitions: tuple[Partition, ...] = field(default_factory=tuple)
    null_cursor: NullCursorPolicy = "include"
    procedure: str = ""  # warehouse procedure that loads the staged rows into their dimension
    # bad-input rules (flows/validation.py): instants of things that already happened (never in the
    # future), and (earlier, later) pairs that cannot be the other way round
    past_instants: tuple[str, ...] = ()
    ordered_instants: tuple[tuple[str, str], ...] = ()
    # the dimension's names for business_key, in the same order, where they differ (key-set reconciliation
    # matches the source's keys with the dimension's: flows/key_sets.py)
    dimension_key: tuple[str, ...] = ()
    domains: tuple[Domain, ...] = ()  # numeric columns' allowed values (flows/domains.py)

    @property
    def staging_table(self) -> str:
        return self.name

    def watermark_partitions(self) -> tuple[Partition, ...]:
        """Partitions with a watermark of their own; an unpartitioned object has one, named ''."""
        return self.partitions or (Partition("", self.time_semantics),)


# Declaration order is load order: parents before the dimensions that resolve against them
# (projects before issues, whose name fallback reads the current projects).
SOURCES: tuple[SourceObject, ...] = (
    SourceObject(
        name="clients",
        procedure="warehouse.load_dim_client",
        source_schema="dbo",
        source_table="clients",
        business_key=("client_id",),
        columns=("client_id", "client_name", "contact_name", "contact_email", "contact_phone", "address", "city",
                 "state", "postcode", "country"),
        strategy="full_compare",
    ),
    SourceObject(
        name="project_types",
        procedure="warehouse.load_dim_project_type",
        source_schema="dbo",
        source_table="project_types",
        business_key=("type_id",),
        columns=("type_id", "type_name"),
        strategy="full_compare",
    ),
    SourceObject(
        name="users",
        procedure="warehouse.load_dim_app_user",
        source_schema="dbo",
        source_table="users",
        business_key=("user_id",),
        columns=("user_id", "name", "role", "email", "created_at"),
        strategy="full_compare",
    ),
    SourceObject(
        name="projects",
        procedure="warehouse.load_dim_project",
        source_schema="dbo",
        source_table="projects",
        business_key=("project_id",),
        columns=("project_id", "project_name", "client_id", "type_id", "status", "priority", "start_date", "end_date",
                 "area_hectares", "city", "state", "contract_value", "agreed_fee", "created_at", "updated_at"),
        strategy="full_compare",  # updated_at is NULL on insert and only sometimes maintained
        domains=(Domain("contract_value"), Domain("agreed_fee")),  # money: never negative
    ),
    SourceObject(
        name="services",
        procedure="warehouse.load_dim_service",
        source_schema="dbo",
        source_table="ProjectServices",
        business_key=("service_id",),
        columns=("service_id", "project_id", "phase", "service_code", "service_name", "unit_type", "unit_qty",
                 "unit_rate", "lump_sum_fee", "agreed_fee", "status", "progress_pct", "claimed_to_date",
                 "assigned_user_id", "created_at", "updated_at"),
        strategy="full_compare",  # updated_at is not maintained
        # fees, the rate a fee is computed from and claims are never negative; progress is a percentage
        domains=(Domain("unit_rate"), Domain("lump_sum_fee"), Domain("agreed_fee"), Domain("claimed_to_date"),
                 Domain("progress_pct", maximum=Decimal(100))),
    ),
    SourceObject(
        name="reviews",
        procedure="warehouse.load_dim_review",
        source_schema="dbo",
        source_table="ServiceReviews",
        business_key=("review_id",),
        columns=("review_id", "service_id", "cycle_no", "planned_date", "due_date", "status", "weight_factor",
                 "disciplines", "deliverables", "actual_issued_at", "assigned_user_id"),
        strategy="full_compare",  # no change column; rows are hard-deleted
        time_semantics="local",
        past_instants=("actual_issued_at",),
    ),
    SourceObject(
        name="issue_categories",
        procedure="warehouse.load_dim_issue_category",
        source_schema="dbo",
        source_table="IssueCategories",
        business_key=("category_id",),
        columns=("category_id", "category_name", "parent_category_id", "category_level", "is_active", "created_at",
                 "updated_at"),
        strategy="cursor",
        cursor_column="updated_at",
    ),
    SourceObject(
        name="status_map",
        procedure="warehouse.load_dim_status_map",
        source_schema="dbo",
        source_table="issue_status_map",
        business_key=("source_system", "raw_status"),
        columns=("source_system", "raw_status", "normalized_status", "is_closed"),
        strategy="full_compare",
    ),
    SourceObject(
        name="priority_map",
        procedure="warehouse.load_dim_priority_map",
        source_schema="dbo",
        source_table="issue_priority_map",
        business_key=("source_system", "raw_priority"),
        columns=("source_system", "raw_priority", "normalized_priority"),
        strategy="full_compare",
    ),
    SourceObject(
        name="issues",
        procedure="warehouse.load_dim_issue",
        source_schema="dbo",
        source_table="vw_ProjectManagement_AllIssues",
        business_key=("source", "source_project_id", "source_issue_id"),
        columns=("source", "issue_id", "source_issue_id", "source_project_id", "pm_project_id", "project_name",
                 "title", "status", "priority", "assignee", "author", "created_at", "closed_at",
                 "source_updated_at", "is_deleted", "deleted_at"),
        strategy="cursor",
        cursor_column="source_updated_at",
        partition_column="source",
        # One watermark per tracker: ACC stamps UTC, Revizto the server's local time, and either
        # tracker's import can lag the other by hours.
        partitions=(Partition("ACC", "utc"), Partition("Revizto", "local")),
        past_instants=("created_at", "closed_at", "deleted_at"),
        ordered_instants=(("created_at", "closed_at"), ("created_at", "deleted_at")),
        dimension_key=("source_system", "source_project_id", "source_issue_id"),
    ),
    SourceObject(
        name="processed_issues",
        procedure="warehouse.load_dim_issue_analytics",
        source_schema="dbo",
        source_table="ProcessedIssues",
        business_key=("source", "source_issue_id"),
        columns=("source", "source_issue_id", "urgency_score", "complexity_score", "sentiment_score",
                 "categorization_confidence", "discipline_category_id", "primary_category_id",
                 "secondary_category_id", "resolution_days", "is_recurring", "comment_count", "processed_at",
                 "processing_version"),
        strategy="cursor",
        cursor_column="processed_at",
        time_semantics="local",
        dimension_key=("source_system", "source_issue_id"),
    ),
)  # fmt: skip

SOURCES_BY_NAME = {source.name: source for source in SOURCES}


def select_sources(names: list[str] | None) -> tuple[SourceObject, ...]:
    """The declared sources named in ``names`` (all when None), in declaration order."""
    if not names:
        return SOURCES
    unknown = sorted(set(names) - set(SOURCES_BY_NAME))
    if unknown:
        from flows.errors import ConfigurationError

        raise ConfigurationError(
            "sources", unknown, ", ".join(SOURCES_BY_NAME), "Name sources as declared in flows/sources.py."
        )
    return tuple(source for source in SOURCES if source.name in names)
