"""Incremental staging and SCD2 dimensions through the Prefect flow, asserted on the data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from dimension_checks import DIMENSION_KEYS, scd2_violations

from flows import demo_source
from flows.facts import FACT_PROCEDURES
from flows.warehouse_flow import warehouse

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)  # the seed's anchor: the source's "now"
SOURCE_NOW = AS_OF.replace(tzinfo=None)

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def loaded(upgraded: sa.Engine) -> sa.Engine:
    """Warehouse at head, demo source (scale 1) in the same database, one run done at AS_OF."""
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=SOURCE_NOW)
    assert run(AS_OF)["status"] == "success"
    return upgraded


def run(as_of: datetime, **options: Any) -> dict[str, Any]:
    return warehouse(as_of=as_of, **options)


def q(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


def rows_of(engine: sa.Engine, sql: str, **params: Any) -> list[Any]:
    return [r[0] for r in rows(engine, sql, **params)]


def execute(engine: sa.Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(sql), params)


SCD2_MEANINGS = ("new_keys", "new_versions", "versions_closed", "deleted_at_source")


def step_totals(engine: sa.Engine, run_id: int) -> dict[str, tuple[int, int, int, int]]:
    """Per step of the run: what its rows mean in SCD2 terms (new keys, new versions, versions closed,
    deleted at the source); all 0 for a step that is no dimension load."""
    meanings: dict[str, dict[str, int]] = {}
    for r in rows(engine, "SELECT step_name, meaning, value FROM ctl.run_step_meaning WHERE run_id = :r", r=run_id):
        meanings.setdefault(r.step_name, {})[r.meaning] = r.value
    steps = rows_of(engine, "SELECT step_name FROM ctl.run_step WHERE run_id = :r", r=run_id)
    return {s: tuple(meanings.get(s, {}).get(m, 0) for m in SCD2_MEANINGS) for s in steps}  # type: ignore[misc]


def warehouse_writes(engine: sa.Engine, run_id: int) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(step, table) -> rows physically inserted, updated, deleted in a dimension, fact or bridge table."""
    return {
        (r.step_name, r.table_name): (r.rows_inserted, r.rows_updated, r.rows_deleted)
        for r in rows(
            engine,
            "SELECT step_name, table_name, rows_inserted, rows_updated, rows_deleted FROM ctl.run_step_table "
            "WHERE run_id = :r AND (table_name LIKE 'dim.%' OR table_name LIKE 'fact.%' OR table_name LIKE 'brg.%')",
            r=run_id,
        )
    }


def watermarks(engine: sa.Engine) -> dict[tuple[str, str], datetime]:
    return {
        (r.source_object, r.source_partition): r.cursor_value
        for r in rows(engine, "SELECT source_object, source_partition, cursor_value FROM ctl.watermark")
    }


def test_initial_load_builds_every_dimension(loaded: sa.Engine) -> None:
    assert q(loaded, "SELECT count(*) FROM dim.issue WHERE is_current AND issue_sk <> -1") == 10_000
    for name in DIMENSION_KEYS:  # every dimension keeps its unknown member, current and not deleted
        assert q(loaded, f"SELECT count(*) FROM dim.{name} WHERE {name}_sk = -1 AND is_current AND NOT is_deleted") == 1
    assert q(loaded, "SELECT count(*) FROM dim.project WHERE is_current AND project_sk <> -1") == 20
    assert q(loaded, "SELECT status FROM ctl.run ORDER BY run_id DESC LIMIT 1") == "success"
    assert scd2_violations(loaded) == {}
    # one watermark per cursor source and tracker, never shared between ACC and Revizto
    assert set(watermarks(loaded)) == {
        ("issues", "ACC"), ("issues", "Revizto"), ("issue_categories", ""), ("processed_issues", ""),
    }  # fmt: skip


def test_a_second_run_with_no_source_change_writes_nothing(loaded: sa.Engine) -> None:
    before = watermarks(loaded)
    result = run(AS_OF)
    assert result["status"] == "success"
    totals = step_totals(loaded, result["run_id"])
    # a pull and a load per source, the calendar, each fact, their publication, the watermarks, the checks
    assert len(totals) == 2 * 11 + 1 + len(FACT_PROCEDURES) + 3
    assert {step: counts for step, counts in totals.items() if counts != (0, 0, 0, 0)} == {}
    assert warehouse_writes(loaded, result["run_id"]) == {}
    assert watermarks(loaded) == before
    assert q(loaded, "SELECT status FROM ctl.run WHERE run_id = :r", r=result["run_id"]) == "success"
    windows = rows(
        loaded,
        """SELECT source_object, source_partition, window_from, window_to, watermark_before,
        watermark_after FROM ctl.run_source WHERE run_id = :r AND strategy = 'cursor'""",
        r=result["run_id"],
    )
    assert len(windows) == 4
    for w in windows:  # the run can be explained from ctl alone: look-back window up to the as-of
        assert w.watermark_after == w.watermark_before == before[(w.source_object, w.source_partition)]
        assert w.window_from == w.watermark_before - timedelta(hours=24) and w.window_to is not None


def test_a_full_refresh_rereads_everything_and_changes_nothing(loaded: sa.Engine) -> None:
    result = run(AS_OF, full_refresh=True)
    read = {
        r.source_object: r.total
        for r in rows(
            loaded,
            """SELECT source_object, sum(rows_read) AS total FROM ctl.run_source
            WHERE run_id = :r GROUP BY 1""",
            r=result["run_id"],
        )
    }
    assert read["issues"] == 10_000
    assert {s: c for s, c in step_totals(loaded, result["run_id"]).items() if c != (0, 0, 0, 0)} == {}
    assert warehouse_writes(loaded, result["run_id"]) == {}
    # a full pull compares nothing with the rows loaded before: every row goes through the merge again
    assert {unchanged for _, unchanged in unchanged_counts(loaded, result["run_id"]).values()} == {None}


def unchanged_counts(engine: sa.Engine, run_id: int) -> dict[tuple[str, str], tuple[int, int | None]]:
    """Per cursor source partition of a run: (rows read, re-read rows dropped as loaded before)."""
    return {
        (r.source_object, r.source_partition): (r.rows_read, r.rows_unchanged)
        for r in rows(
            engine,
            "SELECT s.source_object, s.source_partition, s.rows_read, l.rows_unchanged FROM ctl.run_source AS s "
            "JOIN ctl.run_source_load AS l USING (run_id, source_object, source_partition) "
            "WHERE s.run_id = :r AND s.strategy = 'cursor'",
            r=run_id,
        )
    }


def retitle_latest_acc_issue(engine: sa.Engine, title: str) -> sa.Row[Any]:
    """Give the ACC issue changed last a new title, one second later; return its key."""
    key = rows(engine, "SELECT acc_project_id, acc_issue_id, updated_at FROM dbo.acc_issues "
               "ORDER BY updated_at DESC LIMIT 1")[0]  # fmt: skip
    execute(engine, "UPDATE dbo.acc_issues SET title = :title, updated_at = :t "
            "WHERE acc_project_id = :p AND acc_issue_id = :i", title=title, t=key.updated_at + timedelta(seconds=1),
            p=key.acc_project_id, i=key.acc_issue_id)  # fmt: skip
    return key


def current_title(engine: sa.Engine, project: str, issue: str) -> str:
    return str(q(engine, "SELECT title FROM dim.issue WHERE source_system = 'ACC' AND source_project_id = :p "
                 "AND source_issue_id = :i AND is_current", p=project, i=issue))  # fmt: skip


def test_rows_re_read_unchanged_are_dropped_before_the_dimension_load(loaded: sa.Engine) -> None:
    second = run(AS_OF)["run_id"]
    counts = unchanged_counts(loaded, second)
    # the look-back window re-reads rows the first run loaded; none changed, so none reaches a dimension
    assert counts[("issues", "ACC")][0] > 0 and counts[("issues", "Revizto")][0] > 0
    assert counts[("processed_issues", "")][0] > 0
    assert all(read == unchanged for read, unchanged in counts.values()), counts
    steps = rows(loaded, "SELECT step_name, rows_read FROM ctl.run_step WHERE run_id = :r", r=second)
    loads = {r.step_name: r.rows_read for r in steps}
    assert loads["warehouse.load_dim_issue"] == loads["warehouse.load_dim_issue_analytics"] == 0

    # one re-read row changes at the source (its cursor too): only it is loaded
    key = retitle_latest_acc_issue(loaded, "changed in the look-back")
    third = run(AS_OF + timedelta(hours=1))["run_id"]
    read, unchanged = unchanged_counts(loaded, third)[("issues", "ACC")]
    assert unchanged == read - 1
    assert current_title(loaded, key.acc_project_id, key.acc_issue_id) == "changed in the look-back"
    assert scd2_violations(loaded) == {}


def test_only_rows_whose_load_committed_are_compared_with(loaded: sa.Engine) -> None:
    key = retitle_latest_acc_issue(loaded, "refused once")
    # the issue dimension's load fails after the pull staged the changed row
    execute(loaded, "ALTER TABLE dim.issue ADD CONSTRAINT refuse_once CHECK (title <> 'refused once')")
    with pytest.raises(Exception, match="refuse_once"):
        run(AS_OF + timedelta(hours=1))
    execute(loaded, "ALTER TABLE dim.issue DROP CONSTRAINT refuse_once")
    # the next pull re-reads the row: identical to one staged before, but that load never committed
    rerun = run(AS_OF + timedelta(hours=1))
    assert rerun["status"] == "success"
    assert current_title(loaded, key.acc_project_id, key.acc_issue_id) == "refused once"
    read, unchanged = unchanged_counts(loaded, rerun["run_id"])[("issues", "ACC")]
    assert 0 < unchanged < read


def test_late_rows_and_boundary_timestamps_are_loaded_once(loaded: sa.Engine) -> None:
    watermark = watermarks(loaded)[("issues", "ACC")]
    late, boundary = watermark - timedelta(hours=5), watermark
    # A row committed late: its change time is older than the watermark, inside the look-back.
    execute(loaded, """UPDATE dbo.acc_issues SET title = 'late commit', updated_at = :t
        WHERE acc_issue_id = (SELECT min(acc_issue_id) FROM dbo.acc_issues
                              WHERE updated_at < :t - interval '2 days')""",
            t=late)  # fmt: skip
    # Three rows stamped exactly at the watermark, committed after the last run read it.
    execute(loaded, """UPDATE dbo.acc_issues SET title = title || ' (boundary)', updated_at = :t
        WHERE acc_issue_id IN (SELECT acc_issue_id FROM dbo.acc_issues WHERE updated_at < :t - interval '2 days'
                               ORDER BY acc_issue_id DESC LIMIT 3)""", t=boundary)  # fmt: skip
    result = run(AS_OF)
    assert step_totals(loaded, result["run_id"])["warehouse.load_dim_issue"][:3] == (0, 4, 4)
    assert q(loaded, "SELECT count(*) FROM dim.issue WHERE is_current AND title = 'late commit'") == 1
    assert q(loaded, "SELECT count(*) FROM dim.issue WHERE is_current AND title LIKE '% (boundary)'") == 3
    assert q(loaded, "SELECT count(*) FROM dim.issue WHERE title LIKE '% (boundary)'") == 3  # no duplicates
    again = run(AS_OF)  # the look-back re-reads them: nothing changes
    assert step_totals(loaded, again["run_id"])["warehouse.load_dim_issue"] == (0, 0, 0, 0)
    assert scd2_violations(loaded) == {}


def test_one_trackers_late_import_is_not_hidden_by_the_others_watermark(upgraded: sa.Engine) -> None:
    demo_source.seed(upgraded, scale=1, seed_value=42, anchor=SOURCE_NOW)
    # Revizto's import lags two days: its newest rows are far older than ACC's.
    execute(upgraded, "DELETE FROM dbo.revizto_issues WHERE updated_local > :t", t=SOURCE_NOW - timedelta(days=2))
    assert run(AS_OF)["status"] == "success"
    marks = watermarks(upgraded)
    acc_utc = marks[("issues", "ACC")]
    # The import now delivers an issue changed 30 hours before ACC's watermark (outside ACC's
    # look-back) but after Revizto's own watermark. Stored in Sydney time (UTC+11 in November).
    changed_local = acc_utc - timedelta(hours=30) + timedelta(hours=11)
    assert changed_local > marks[("issues", "Revizto")]
    execute(
        upgraded,
        """INSERT INTO dbo.revizto_issues (revizto_project_id, revizto_issue_id, issue_number,
        pm_project_id, project_name, title, status, priority, assignee, reporter, created_local, closed_local,
        updated_local, is_deleted, deleted_local)
        SELECT revizto_project_id, 99999999, 99999, pm_project_id, project_name, 'late Revizto import', 'Open',
            'L2 - High', NULL, NULL, :t, NULL, :t, FALSE, NULL FROM dbo.revizto_issues LIMIT 1""",
        t=changed_local,
    )
    run(AS_OF)
    created = q(upgraded, "SELECT created_at FROM dim.issue WHERE source_issue_id = '99999999' AND is_current")
    assert created == (acc_utc - timedelta(hours=30)).replace(tzinfo=UTC)  # converted from local to UTC


def test_rows_with_a_null_cursor_are_loaded_and_rereading_them_changes_nothing(loaded: sa.Engine) -> None:
    # The issues view declares null_cursor="include": a row whose change time is NULL is read every run.
    execute(loaded, "ALTER TABLE dbo.acc_issues ALTER COLUMN updated_at DROP NOT NULL")
    issue = rows(loaded, "SELECT acc_issue_id FROM dbo.acc_issues ORDER BY acc_issue_id LIMIT 1")[0].acc_issue_id
    execute(loaded, "UPDATE dbo.acc_issues SET title = 'no change time', updated_at = NULL WHERE acc_issue_id = :i",
            i=issue)  # fmt: skip
    first = run(AS_OF + timedelta(hours=1))
    assert step_totals(loaded, first["run_id"])["warehouse.load_dim_issue"][:3] == (0, 1, 1)
    assert (
        q(loaded, "SELECT title FROM dim.issue WHERE source_issue_id = :i AND is_current", i=issue) == "no change time"
    )
    second = run(AS_OF + timedelta(hours=2))
    assert step_totals(loaded, second["run_id"])["warehouse.load_dim_issue"] == (0, 0, 0, 0)
    assert scd2_violations(loaded) == {}


def test_changes_without_a_change_column_and_hard_deletes(loaded: sa.Engine) -> None:
    service_id = q(loaded, """SELECT min(service_id) FROM dbo."ProjectServices" WHERE unit_type = 'lump_sum'""")
    review_changed = q(loaded, """SELECT min(review_id) FROM dbo."ServiceReviews" WHERE status = 'planned'""")
    review_deleted = q(loaded, """SELECT max(review_id) FROM dbo."ServiceReviews" WHERE status = 'planned'""")
    progress_before = dict(rows(loaded, 'SELECT service_id, progress_pct FROM dbo."ProjectServices"'))
    execute(
        loaded,
        """UPDATE dbo."ProjectServices" SET progress_pct = 55.5, claimed_to_date = 1234.00,
        agreed_fee = agreed_fee + 100 WHERE service_id = :s""",
        s=service_id,
    )  # updated_at untouched
    execute(loaded, """UPDATE dbo."ServiceReviews" SET status = 'completed', actual_issued_at = :t
        WHERE review_id = :r""", r=review_changed, t=SOURCE_NOW)  # fmt: skip
    execute(loaded, 'DELETE FROM dbo."ServiceReviews" WHERE review_id = :r', r=review_deleted)
    # the review trigger rewrites progress_pct of the reviews' services too, without updated_at
    progress_after = dict(rows(loaded, 'SELECT service_id, progress_pct FROM dbo."ProjectServices"'))
    changed_services = {k for k, v in progress_after.items() if progress_before[k] != v} | {service_id}
    later = AS_OF + timedelta(hours=6)
    result = run(later)
    totals = step_totals(loaded, result["run_id"])
    n = len(changed_services)
    assert totals["warehouse.load_dim_service"] == (0, n, n, 0)
    assert set(rows_of(loaded, "SELECT service_id FROM dim.service WHERE valid_from = :t", t=later)) == changed_services
    assert totals["warehouse.load_dim_review"] == (0, 1, 2, 1)
    service = rows(loaded, """SELECT progress_pct, claimed_to_date, valid_from, is_current FROM dim.service
        WHERE service_id = :s ORDER BY valid_from""", s=service_id)  # fmt: skip
    assert [(float(r.progress_pct), float(r.claimed_to_date), r.is_current) for r in service][-1] == (
        55.5,
        1234.0,
        True,
    )
    assert service[-1].valid_from == later
    gone = rows(loaded, """SELECT is_deleted, is_current, valid_from, valid_to FROM dim.review
        WHERE review_id = :r ORDER BY valid_from""", r=review_deleted)  # fmt: skip
    assert [(r.is_deleted, r.is_current) for r in gone] == [(False, False), (True, True)]
    assert gone[0].valid_to == gone[1].valid_from == later
    assert (
        q(loaded, "SELECT status FROM dim.review WHERE review_id = :r AND is_current", r=review_changed) == "completed"
    )
    assert scd2_violations(loaded) == {}


def test_two_changes_between_runs_give_one_contiguous_version(loaded: sa.Engine) -> None:
    issue = rows(loaded, "SELECT acc_project_id, acc_issue_id FROM dbo.acc_issues ORDER BY acc_issue_id LIMIT 1")[0]
    first, second = SOURCE_NOW + timedelta(hours=1), SOURCE_NOW + timedelta(hours=2)
    for title, stamp in (("first edit", first), ("second edit", second)):
        execute(loaded, "UPDATE dbo.acc_issues SET title = :title, updated_at = :t WHERE acc_issue_id = :i",
                title=title, t=stamp, i=issue.acc_issue_id)  # fmt: skip
    run(AS_OF + timedelta(hours=3))
    versions = rows(loaded, """SELECT title, valid_from, valid_to, is_current FROM dim.issue
        WHERE source_issue_id = :i ORDER BY valid_from""", i=issue.acc_issue_id)  # fmt: skip
    assert [v.title for v in versions][-1] == "second edit" and "first edit" not in [v.title for v in versions]
    assert versions[-2].valid_to == versions[-1].valid_from == second.replace(tzinfo=UTC)
    assert versions[-1].is_current and not versions[-2].is_current


def test_issue_identity_and_project_renames(loaded: sa.Engine) -> None:
    shared_number = q(loaded, """SELECT count(*) FROM (SELECT issue_number FROM dim.issue WHERE is_current
        GROUP BY issue_number HAVING count(DISTINCT source_project_id) > 1) AS n""")  # fmt: skip
    assert shared_number > 0  # the same issue number in several projects: distinct issues
    project_id = q(loaded, "SELECT project_id FROM dim.issue WHERE project_resolution = 'key' LIMIT 1")
    issue_versions = q(loaded, "SELECT count(*) FROM dim.issue")
    execute(loaded, "UPDATE dbo.projects SET project_name = 'Renamed Tower' WHERE project_id = :p", p=project_id)
    result = run(AS_OF + timedelta(hours=1))
    assert q(loaded, "SELECT project_name FROM dim.project WHERE project_id = :p AND is_current", p=project_id) == (
        "Renamed Tower"
    )
    assert step_totals(loaded, result["run_id"])["warehouse.load_dim_issue"][:3] == (0, 0, 0)
    assert q(loaded, "SELECT count(*) FROM dim.issue") == issue_versions


def test_project_name_is_only_a_flagged_fallback(loaded: sa.Engine) -> None:
    by_name = rows(loaded, """SELECT i.tracker_project_name, i.project_id FROM dim.issue AS i
        WHERE i.is_current AND i.project_resolution = 'name'""")  # fmt: skip
    assert by_name
    for row in by_name:
        assert q(loaded, "SELECT count(*) FROM dbo.projects WHERE project_name = :n", n=row.tracker_project_name) == 1
    unresolved = rows(loaded, """SELECT DISTINCT tracker_project_name FROM dim.issue
        WHERE is_current AND project_resolution = 'unresolved'""")  # fmt: skip
    assert unresolved
    assert (
        q(loaded, "SELECT count(*) FROM dim.issue WHERE project_resolution = 'unresolved' AND project_id IS NOT NULL")
        == 0
    )


def test_ten_days_of_changes_keep_every_dimension_consistent(loaded: sa.Engine) -> None:
    for day in range(1, 11):
        demo_source.advance(loaded, days=1)
        assert run(AS_OF + timedelta(days=day))["status"] == "success"
        assert scd2_violations(loaded) == {}, f"after day {day}"
    # reconciled with the source: every issue, with its current deletion flag
    assert q(loaded, """SELECT count(*) FROM dbo."vw_ProjectManagement_AllIssues" AS s
        LEFT JOIN dim.issue AS d ON d.is_current AND (d.source_system, d.source_project_id, d.source_issue_id)
            = (s.source, s.source_project_id, s.source_issue_id) AND d.is_deleted = s.is_deleted
        WHERE d.issue_sk IS NULL""") == 0  # fmt: skip
    assert q(loaded, "SELECT count(*) FROM dim.review WHERE is_current AND NOT is_deleted AND review_sk <> -1") == q(
        loaded, 'SELECT count(*) FROM dbo."ServiceReviews"'
    )
    assert q(loaded, "SELECT count(*) FROM dim.issue WHERE is_deleted AND is_current") > 0
    assert q(loaded, "SELECT count(*) FROM dim.project GROUP BY project_id ORDER BY 1 DESC LIMIT 1") > 1


def test_a_concurrent_run_is_skipped_and_writes_nothing(loaded: sa.Engine, database_url) -> None:  # type: ignore[no-untyped-def]
    execute(loaded, "UPDATE dbo.projects SET project_name = 'Changed meanwhile' WHERE project_id = 1")
    holder = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with holder.connect() as other_run:
        other_run.execute(sa.text("SELECT pg_advisory_lock(hashtext('pmw:run'))"))
        versions = q(loaded, "SELECT count(*) FROM dim.project")
        result = run(AS_OF + timedelta(hours=1))
        assert result["status"] == "skipped"
        assert q(loaded, "SELECT count(*) FROM dim.project") == versions
        last = rows(loaded, "SELECT status, run_id FROM ctl.run ORDER BY run_id DESC LIMIT 1")[0]
        assert last.status == "skipped"
        assert q(loaded, "SELECT count(*) FROM ctl.run_step WHERE run_id = :r", r=last.run_id) == 0
    holder.dispose()
    assert run(AS_OF + timedelta(hours=1))["status"] == "success"  # the lock is free again
    assert q(loaded, "SELECT count(*) FROM dim.project") == versions + 1


def test_a_failing_step_fails_the_run_and_moves_no_watermark(loaded: sa.Engine) -> None:
    marks = watermarks(loaded)
    execute(loaded, "UPDATE dbo.acc_issues SET title = 'pending', updated_at = :t WHERE issue_number = 1",
            t=SOURCE_NOW + timedelta(minutes=5))  # fmt: skip
    execute(loaded, "DELETE FROM dbo.clients WHERE client_id NOT IN (SELECT client_id FROM dbo.projects)")
    execute(loaded, "TRUNCATE dbo.clients CASCADE")  # an empty master table: refused, not deleted
    with pytest.raises(Exception, match=r"circuit breaker: dim\.client would close"):
        run(AS_OF + timedelta(hours=1))
    last = rows(loaded, "SELECT status, error_text FROM ctl.run ORDER BY run_id DESC LIMIT 1")[0]
    assert last.status == "failed" and "dim.client" in last.error_text
    assert watermarks(loaded) == marks
    assert q(loaded, "SELECT count(*) FROM dim.client WHERE is_deleted") == 0
