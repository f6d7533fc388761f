"""Raw statuses and priorities meet the maps trimmed and case-insensitively; the daily snapshot carries text analytics.

Why (issue #13): the maps were matched by the raw value as written, but the trackers disagree on case and
spacing (Revizto sends ``Solved``, a map row says ``solved``), so such an issue counted as open; and the
daily snapshot could not say how urgent an issue was on a day. business-rules.md now says that raw values
meet the maps trimmed and case-insensitively, and that each snapshot row carries the text analytics in
effect at that day's instant.
What: new versions of ``load_fact_issue_daily`` and ``load_fact_issue_event`` resolve every distinct raw
spelling (not every issue) by ``lower(trim())`` against the map rows in effect; of map rows that differ only
by case or spaces the first in code-point order wins (the ``*_map_conflicts`` checks report them). A map
row that has the spelling decides its priority even when it maps it to NULL (both dialects now agree).
``fact.issue_daily`` gains ``issue_analytics_sk`` (the ``dim.issue_analytics`` version in effect, -1 when
none) and the analytics measures (urgency, complexity, sentiment, categorisation confidence, discipline
and primary category ids; NULL when none); a new analytics version recomputes its issue's rows from the
day it starts on, as a new issue version does. ``mart.issue_urgency`` (new): open and high-urgency open
issues per project and day.
Existing snapshot rows are filled here, not by the next run: one set-based UPDATE gives each row the
analytics version in effect at its day's instant (the end of the local day, or the newest published
as-of instant, whichever is earlier: the instant the loader uses), so the upgraded warehouse is at once
what the new loader would have written, and no run has to recompute the whole history (at a million
issues a day, a long run). The day's end needs the business time zone: it is the one the runs pass to
the procedures, ``PMW_BUSINESS_TIMEZONE`` (default Australia/Sydney), or ``-x business_timezone=<zone>``
(on SQL Server a Windows zone name, e.g. ``AUS Eastern Standard Time``, as its procedures take).
Risk: adding the columns is a catalog change (a constant default; no rewrite on PostgreSQL 11+, metadata
only on SQL Server 2012+ Enterprise), but the fill updates every snapshot row of an issue with analytics:
on a large history it rewrites most of the fact (time and WAL/log proportional to its size) under the
migration lock, while runs wait. It stops, before writing, when the warehouse has snapshot rows and the
zone is unknown to the database. Procedure signatures do not change (CREATE OR REPLACE / ALTER).
Downgrade drops the view, restores the previous procedures and drops the new columns (their values are
lost; upgrading again fills them once more from the analytics history).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import context, op

from flows.settings import load as load_settings
from migrations.replaceable import apply_version, revert_version, run_as_is

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

PROCEDURES = ("warehouse.load_fact_issue_daily", "warehouse.load_fact_issue_event")
VIEWS = ("mart.issue_urgency",)
SCORE = sa.Numeric(5, 4)
MEASURES = (
    ("urgency_score", SCORE, "text analytics in effect that day (0-1); NULL without analytics"),
    ("complexity_score", SCORE, "text analytics in effect that day (0-1); NULL without analytics"),
    ("sentiment_score", SCORE, "text analytics in effect that day (-1-1); NULL without analytics"),
    ("categorization_confidence", SCORE, "text analytics in effect that day; NULL without analytics"),
    ("discipline_category_id", sa.Integer(), "IssueCategories id (level 1) in effect that day; NULL without"),
    ("primary_category_id", sa.Integer(), "IssueCategories id in effect that day; NULL without"),
)
ZONE_NAME = re.compile(r"^[A-Za-z0-9_+\-/. ]{1,64}$")


def _business_time_zone() -> str:
    """The zone whose local days the snapshot rows are: as the runs pass it, or ``-x business_timezone``."""
    zone = context.get_x_argument(as_dictionary=True).get("business_timezone") or load_settings().business_timezone
    if not ZONE_NAME.match(zone):
        raise ValueError(
            f"revision 0014: business time zone {zone!r} is not a zone name (letters, digits, space, _ + - / .); "
            "pass the zone the runs use, e.g. -x business_timezone=Australia/Sydney"
        )
    return zone


def _fill_postgresql(zone: str) -> str:
    day_end = f"((d.full_date + 1)::timestamp AT TIME ZONE '{zone}') - interval '1 microsecond'"
    return f"""DO $fill$
BEGIN
    IF EXISTS (SELECT 1 FROM fact.issue_daily) AND NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = '{zone}')
    THEN
        RAISE EXCEPTION 'revision 0014: the business time zone % is not a PostgreSQL time zone', '{zone}'
            USING HINT = 'Set PMW_BUSINESS_TIMEZONE (or pass -x business_timezone=...) to the IANA zone the runs '
                || 'use, e.g. Australia/Sydney, and upgrade again.';
    END IF;
    -- each stored row: the analytics version in effect at its day's instant, as the new loader computes it
    UPDATE fact.issue_daily AS f
    SET issue_analytics_sk = a.issue_analytics_sk, urgency_score = a.urgency_score,
        complexity_score = a.complexity_score, sentiment_score = a.sentiment_score,
        categorization_confidence = a.categorization_confidence, discipline_category_id = a.discipline_category_id,
        primary_category_id = a.primary_category_id
    FROM (
        SELECT d.date_key, LEAST({day_end}, n.as_of_at) AS at_instant
        FROM dim.date AS d
        CROSS JOIN (SELECT COALESCE(max(as_of_at), 'infinity') AS as_of_at FROM ctl.publication) AS n
        WHERE d.full_date IS NOT NULL
    ) AS di,
        dim.issue_key AS k,
        dim.issue_analytics AS a
    WHERE di.date_key = f.snapshot_date_key AND k.issue_key = f.issue_key
        AND a.source_system = k.source_system AND a.source_issue_id = k.source_issue_id
        AND a.valid_from <= di.at_instant AND a.valid_to > di.at_instant AND NOT a.is_deleted
        AND a.issue_analytics_sk <> -1;
END
$fill$;"""


def _fill_mssql(zone: str) -> str:
    day_end = f"DATEADD(MICROSECOND, -1, CAST(DATEADD(DAY, 1, d.full_date) AS DATETIME2) AT TIME ZONE N'{zone}')"
    message = (
        f"revision 0014: the business time zone {zone} is not in sys.time_zone_info; run the upgrade with "
        "-x business_timezone=<the Windows zone name the runs use>, e.g. AUS Eastern Standard Time."
    )
    return f"""IF EXISTS (SELECT 1 FROM fact.issue_daily)
    AND NOT EXISTS (SELECT 1 FROM sys.time_zone_info WHERE name = N'{zone}')
    THROW 50001, N'{message}', 1;

-- each stored row: the analytics version in effect at its day's instant, as the new loader computes it
UPDATE f
SET issue_analytics_sk = a.issue_analytics_sk, urgency_score = a.urgency_score,
    complexity_score = a.complexity_score, sentiment_score = a.sentiment_score,
    categorization_confidence = a.categorization_confidence, discipline_category_id = a.discipline_category_id,
    primary_category_id = a.primary_category_id
FROM fact.issue_daily AS f
INNER JOIN (
    SELECT
        d.date_key,
        CASE WHEN n.as_of_at IS NOT NULL AND n.as_of_at < {day_end} THEN n.as_of_at ELSE {day_end} END
            AS at_instant
    FROM dim.date AS d
    CROSS JOIN (SELECT MAX(as_of_at) AS as_of_at FROM ctl.publication) AS n
    WHERE d.full_date IS NOT NULL
) AS di ON di.date_key = f.snapshot_date_key
INNER JOIN dim.issue_key AS k ON k.issue_key = f.issue_key
INNER JOIN dim.issue_analytics AS a
    ON a.source_system = k.source_system AND a.source_issue_id = k.source_issue_id
    AND a.valid_from <= di.at_instant AND a.valid_to > di.at_instant AND a.is_deleted = 0
    AND a.issue_analytics_sk <> -1;"""


def upgrade() -> None:
    op.add_column(
        "issue_daily",
        sa.Column("issue_analytics_sk", sa.BigInteger, nullable=False, server_default=sa.text("-1"),
                  comment="dim.issue_analytics version in effect that day; -1 none"),
        schema="fact",
    )  # fmt: skip
    for name, column_type, comment in MEASURES:
        op.add_column("issue_daily", sa.Column(name, column_type, nullable=True, comment=comment), schema="fact")

    zone = _business_time_zone()
    dialect = str(op.get_context().dialect.name)
    run_as_is(_fill_mssql(zone) if dialect == "mssql" else _fill_postgresql(zone))

    for qualified in PROCEDURES:
        apply_version(qualified, revision)
    for qualified in VIEWS:
        apply_version(qualified, revision)


def downgrade() -> None:
    for qualified in VIEWS:  # it reads the columns dropped below
        revert_version(qualified, revision, kind="view")
    for qualified in PROCEDURES:
        revert_version(qualified, revision, kind="procedure")
    for name, _, _ in reversed(MEASURES):
        op.drop_column("issue_daily", name, schema="fact")
    op.drop_column("issue_daily", "issue_analytics_sk", schema="fact", mssql_drop_default=True)
