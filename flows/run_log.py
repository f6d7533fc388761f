"""The run log: the only module that writes ``ctl``.

A run takes the run lock on a connection it holds to the end; a second run that cannot get it is
recorded as ``skipped`` and writes nothing else. A run that gets the lock first marks any run still
``running`` as ``failed``: holding the lock proves its owner is gone. A run whose as-of is earlier than
the last published one stops before anything is read, unless asked for on purpose.

Steps record what they read, the rows they physically inserted, updated and deleted in each table they
wrote (``ctl.run_step_table``, as the database counts them: flows/table_counts.py) and what those rows
mean where that differs (``ctl.run_step_meaning``), and their durations. Watermarks move in one
transaction, after the loads have committed the rows.

The recompute contract: every fact and bridge procedure recomputes what changed since the last run whose
fact phase committed it. That run is kept per procedure in ``ctl.step_state``, written here in the fact
phase's own transaction together with ``ctl.publication`` (the run's as-of date and month, which the marts
read), and handed to the procedures as parameters (``since``); no procedure looks up a step by name.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows import database, table_counts
from flows.errors import AsOfBehind, MigrationInProgress
from flows.extract import ExtractWindow
from flows.facts import FACT_PROCEDURES
from flows.quality import CheckResult
from flows.redaction import scrub

RUN_TABLE = sa.table(
    "run",
    *(
        sa.column(name)
        for name in ("run_id", "flow_name", "flow_run_id", "status", "as_of_at", "started_at", "parameters")
    ),
    schema="ctl",
)
STALE_RUN_MESSAGE = "the process running it stopped before it finished; marked failed by run {run_id}"
MAX_ERROR_CHARS = 4000


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class StepCounts:
    """What one step read, wrote per table (physically) and what that means, filled in by its work."""

    rows_read: int = 0
    tables: table_counts.Counts = field(default_factory=dict)  # "schema.table" -> (inserted, updated, deleted)
    meanings: dict[str, int] = field(default_factory=dict)  # new_keys, versions_closed, unchanged, ...

    @property
    def totals(self) -> tuple[int, int, int]:
        """Rows inserted, updated and deleted over every table the step wrote."""
        values = list(self.tables.values())
        return (sum(v[0] for v in values), sum(v[1] for v in values), sum(v[2] for v in values))


@dataclass(frozen=True)
class Since:
    """The run whose committed fact phase a procedure last completed (None: never), and its as-of."""

    run_id: int | None = None
    as_of: datetime | None = None


@dataclass
class Run:
    """An open run holding the run lock."""

    run_id: int
    as_of: datetime
    lock_connection: sa.Connection


def error_text(exc: BaseException) -> str:
    """A one-paragraph, secret-free description of ``exc`` for ctl and the console."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        text = f"{type(exc.orig).__name__}: {exc.orig}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return scrub(text.strip())[:MAX_ERROR_CHARS]


class RunLog:
    """Writes runs, steps, per-source windows and watermarks to ``ctl``."""

    def __init__(self, engine: Engine, flow_name: str = "warehouse") -> None:
        self.engine = engine
        self.flow_name = flow_name

    def open(
        self,
        as_of: datetime,
        parameters: dict[str, object],
        flow_run_id: str | None,
        migration_wait_seconds: float = 60,
        allow_earlier_as_of: bool = False,
    ) -> Run | None:
        """Start a run, or record a skipped one and return None when another run holds the lock.

        A run also holds the migration lock shared: one started while a migration runs waits up to
        ``migration_wait_seconds`` for it, then refuses (MigrationInProgress) having written nothing, as it
        does when the warehouse is not at the code's revision. An as-of earlier than the last published
        run's is refused (AsOfBehind) with nothing written, unless ``allow_earlier_as_of``.
        """
        lock_connection = self.engine.connect()
        try:
            acquired = database.try_run_lock(lock_connection)
            lock_connection.commit()
            if acquired:
                self._check_no_migration(lock_connection, migration_wait_seconds)
                if not allow_earlier_as_of:
                    self._check_as_of(lock_connection, as_of)
        except BaseException:
            database.release_run_lock(lock_connection)
            raise
        started = utc_now()
        run_values = {
            "flow_name": self.flow_name, "flow_run_id": flow_run_id, "as_of_at": as_of, "started_at": started,
            "parameters": json.dumps(parameters, default=str),
        }  # fmt: skip
        if not acquired:
            lock_connection.close()
            with self.engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "INSERT INTO ctl.run (flow_name, flow_run_id, status, as_of_at, started_at, ended_at, "
                        "parameters, error_text) VALUES (:flow_name, :flow_run_id, 'skipped', :as_of_at, "
                        ":started_at, :started_at, :parameters, 'another run holds the run lock')"
                    ),
                    run_values,
                )
            return None
        with self.engine.begin() as conn:
            # Core insert: RETURNING on PostgreSQL, OUTPUT inserted.run_id on SQL Server
            run_id = conn.execute(
                sa.insert(RUN_TABLE).values(status="running", **run_values).returning(RUN_TABLE.c.run_id)
            ).scalar_one()
            message = STALE_RUN_MESSAGE.format(run_id=run_id)
            conn.execute(
                sa.text(
                    "UPDATE ctl.run SET status = 'failed', ended_at = :now, error_text = :message "
                    "WHERE status = 'running' AND run_id <> :run_id"
                ),
                {"now": started, "message": message, "run_id": run_id},
            )
            conn.execute(
                sa.text(
                    "UPDATE ctl.run_step SET status = 'failed', ended_at = :now, error_text = :message "
                    "WHERE status = 'running' AND run_id <> :run_id"
                ),
                {"now": started, "message": message, "run_id": run_id},
            )
            # a dead run's fact steps that finished were rolled back with its unpublished fact phase
            conn.execute(
                sa.text(
                    "UPDATE ctl.run_step SET status = 'reverted', error_text = :message WHERE status = 'success' "
                    "AND step_name IN :facts AND run_id IN (SELECT r.run_id FROM ctl.run AS r WHERE r.run_id <> "
                    ":run_id AND r.ended_at = :now AND r.error_text = :message) AND NOT EXISTS "
                    "(SELECT 1 FROM ctl.publication AS p WHERE p.run_id = ctl.run_step.run_id)"
                ).bindparams(sa.bindparam("facts", expanding=True)),
                {"now": started, "message": message, "run_id": run_id, "facts": list(FACT_PROCEDURES)},
            )
        return Run(run_id=run_id, as_of=as_of, lock_connection=lock_connection)

    @staticmethod
    def _check_no_migration(lock_connection: sa.Connection, wait_seconds: float) -> None:
        from flows import migrate

        if not database.try_shared_migration_lock(lock_connection, wait_seconds):
            raise MigrationInProgress(
                f"a migration of this warehouse is in progress (it holds the lock {database.MIGRATION_LOCK!r}); "
                f"this run waited {wait_seconds:g} s and stopped without writing anything. Start it again when the "
                "upgrade has finished (PMW_MIGRATION_WAIT_SECONDS sets how long a run waits)."
            )
        lock_connection.commit()
        current, heads = migrate.current_revision(lock_connection), migrate.heads()
        lock_connection.commit()
        if current not in heads:
            raise MigrationInProgress(
                f"the warehouse is at revision {current or 'none'} but this code needs {' or '.join(heads)}; "
                "this run wrote nothing. Run `pmw upgrade` (or `alembic upgrade head`) first."
            )

    @staticmethod
    def _check_as_of(conn: sa.Connection, as_of: datetime) -> None:
        latest = conn.execute(
            sa.text(
                "SELECT max(as_of_at) FROM (SELECT as_of_at FROM ctl.publication UNION ALL "
                "SELECT as_of_at FROM ctl.run WHERE status = 'success') AS published"
            )
        ).scalar()
        conn.commit()
        if latest is not None and as_of < latest:
            raise AsOfBehind(as_of, latest)

    def latest_as_of(self) -> datetime | None:
        """The as-of instant of the last run whose facts were published (None before the first)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.text("SELECT max(as_of_at) FROM ctl.publication")).scalar()

    def since(self, conn: sa.Connection, steps: tuple[str, ...]) -> dict[str, Since]:
        """Per step: the last run whose committed fact phase completed it (the procedures' ``since``)."""
        found = {
            row.step_name: Since(row.run_id, row.as_of_at)
            for row in conn.execute(sa.text("SELECT step_name, run_id, as_of_at FROM ctl.step_state"))
        }
        return {step: found.get(step, Since()) for step in steps}

    def record_publication(self, conn: sa.Connection, run: Run, steps: list[str], time_zone: str) -> None:
        """In the fact phase's transaction, before it commits: these steps are completed by ``run``, whose
        as-of date and month (in ``time_zone``) are now what the marts show."""
        now, values = utc_now(), {"r": run.run_id, "as_of": run.as_of}
        for step in steps:
            updated = conn.execute(
                sa.text("UPDATE ctl.step_state SET run_id = :r, as_of_at = :as_of, completed_at = :now "
                        "WHERE step_name = :s"), {**values, "s": step, "now": now},
            ).rowcount  # fmt: skip
            if not updated:
                conn.execute(
                    sa.text("INSERT INTO ctl.step_state (step_name, run_id, as_of_at, completed_at) "
                            "VALUES (:s, :r, :as_of, :now)"), {**values, "s": step, "now": now},
                )  # fmt: skip
        local = run.as_of.astimezone(ZoneInfo(time_zone)).date()
        conn.execute(sa.text("DELETE FROM ctl.publication WHERE run_id = :r"), values)
        conn.execute(
            sa.text("INSERT INTO ctl.publication (run_id, as_of_at, as_of_date_key, as_of_month_key, published_at) "
                    "VALUES (:r, :as_of, :day, :month, :now)"),
            {**values, "day": int(local.strftime("%Y%m%d")), "month": int(local.strftime("%Y%m01")), "now": now},
        )  # fmt: skip

    def mark_reverted(self, run_id: int, steps: list[str]) -> None:
        """Steps whose writes were rolled back with their (fact phase) transaction: not success any more."""
        if not steps:
            return
        with self.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE ctl.run_step SET status = 'reverted', error_text = :why "
                        "WHERE run_id = :r AND step_name IN :steps AND status = 'success'").bindparams(
                    sa.bindparam("steps", expanding=True)),
                {"r": run_id, "steps": steps,
                 "why": "rolled back with the fact phase: a later fact or bridge step failed, so none was published"},
            )  # fmt: skip

    def watermarks(self) -> dict[tuple[str, str], datetime | None]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT source_object, source_partition, cursor_value FROM ctl.watermark"))
            return {(row.source_object, row.source_partition): row.cursor_value for row in rows}

    @contextmanager
    def step(self, run_id: int, name: str) -> Iterator[StepCounts]:
        """Record one step: its counts (filled in by the caller), duration, and outcome."""
        counts = StepCounts()
        started = utc_now()
        clock = time.perf_counter()
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "DELETE FROM ctl.run_step WHERE run_id = :run_id AND step_name = :step;"  # a retried task
                ),
                {"run_id": run_id, "step": name},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO ctl.run_step (run_id, step_name, status, started_at) "
                    "VALUES (:run_id, :step, 'running', :started)"
                ),
                {"run_id": run_id, "step": name, "started": started},
            )
        status, error = "success", None
        try:
            with table_counts.counting_commits(self.engine, counts.tables):
                yield counts
        except BaseException as exc:
            # what the step's committed transactions wrote before it failed stays recorded: it is there
            status, error = "failed", error_text(exc)
            raise
        finally:
            self._finish_step(run_id, name, status, error, counts, round((time.perf_counter() - clock) * 1000))

    def _finish_step(self, run_id: int, name: str, status: str, error: str | None, counts: StepCounts, ms: int) -> None:
        inserted, updated, deleted = counts.totals
        keys = {"run_id": run_id, "step": name}
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE ctl.run_step SET status = :status, ended_at = :ended, duration_ms = :ms, "
                    "rows_read = :rows_read, rows_inserted = :inserted, rows_updated = :updated, "
                    "rows_deleted = :deleted, error_text = :error WHERE run_id = :run_id AND step_name = :step"
                ),
                {
                    **keys, "status": status, "ended": utc_now(), "ms": ms, "error": error,
                    "rows_read": counts.rows_read, "inserted": inserted, "updated": updated, "deleted": deleted,
                },
            )  # fmt: skip
            for table in ("run_step_table", "run_step_meaning"):  # a retried task replaces its record
                conn.execute(sa.text(f"DELETE FROM ctl.{table} WHERE run_id = :run_id AND step_name = :step"), keys)
            if counts.tables:
                conn.execute(
                    sa.text("INSERT INTO ctl.run_step_table (run_id, step_name, table_name, rows_inserted, "
                            "rows_updated, rows_deleted) VALUES (:run_id, :step, :t, :i, :u, :d)"),
                    [{**keys, "t": t, "i": i, "u": u, "d": d} for t, (i, u, d) in sorted(counts.tables.items())],
                )  # fmt: skip
            if counts.meanings:
                conn.execute(
                    sa.text("INSERT INTO ctl.run_step_meaning (run_id, step_name, meaning, value) "
                            "VALUES (:run_id, :step, :m, :v)"),
                    [{**keys, "m": m, "v": v} for m, v in sorted(counts.meanings.items())],
                )  # fmt: skip

    def record_window(self, run_id: int, window: ExtractWindow, rows_read: int, newest: datetime | None) -> None:
        """Record what a pull read (replacing the record of an earlier try of the same pull)."""
        keys = {"r": run_id, "s": window.source, "p": window.partition}
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "DELETE FROM ctl.run_source WHERE run_id = :r AND source_object = :s AND source_partition = :p"
                ),
                keys,
            )
            conn.execute(
                sa.text(
                    "INSERT INTO ctl.run_source (run_id, source_object, source_partition, strategy, window_from, "
                    "window_to, watermark_before, newest_cursor, rows_read) "
                    "VALUES (:r, :s, :p, :strategy, :wf, :wt, :wb, :newest, :rows)"
                ),
                {
                    **keys, "strategy": window.strategy, "wf": window.window_from, "wt": window.window_to,
                    "wb": window.watermark_before, "newest": newest, "rows": rows_read,
                },
            )  # fmt: skip

    def move_watermarks(self, run_id: int) -> None:
        """After the dimensions committed this run's rows: advance every cursor watermark, atomically.

        The new watermark is the newest cursor value staged, never below the old one, except after a window
        read from the beginning (a full refresh): then it is what the source really holds, which repairs a
        watermark that was later than the source's clock.
        """
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE ctl.run_source SET watermark_after = CASE "
                    "WHEN newest_cursor IS NULL THEN watermark_before "
                    "WHEN watermark_before IS NULL OR window_from IS NULL OR newest_cursor > watermark_before "
                    "THEN newest_cursor "
                    "ELSE watermark_before END WHERE run_id = :r AND strategy = 'cursor'"
                ),
                {"r": run_id},
            )
            moved = conn.execute(
                sa.text(
                    "SELECT source_object, source_partition, watermark_after FROM ctl.run_source "
                    "WHERE run_id = :r AND strategy = 'cursor' AND watermark_after IS NOT NULL "
                    "AND (watermark_before IS NULL OR watermark_after <> watermark_before)"
                ),
                {"r": run_id},
            ).all()
            for source, partition, value in moved:
                params = {"s": source, "p": partition, "v": value, "r": run_id, "now": utc_now()}
                updated = conn.execute(
                    sa.text(
                        "UPDATE ctl.watermark SET cursor_value = :v, run_id = :r, updated_at = :now "
                        "WHERE source_object = :s AND source_partition = :p"
                    ),
                    params,
                ).rowcount
                if not updated:
                    conn.execute(
                        sa.text(
                            "INSERT INTO ctl.watermark (source_object, source_partition, cursor_value, run_id, "
                            "updated_at) VALUES (:s, :p, :v, :r, :now)"
                        ),
                        params,
                    )

    def record_quality(self, run_id: int, results: list[CheckResult]) -> None:
        """Record every check's result (replacing those of an earlier try of the same run's checks)."""
        checked_at = utc_now()
        rows = [
            {
                "r": run_id, "name": r.check.name, "severity": r.check.severity, "status": r.status,
                "failing": r.failing_count, "threshold": r.check.threshold,
                "sample": "; ".join(r.sample_keys)[:MAX_ERROR_CHARS] or None, "message": r.message, "at": checked_at,
            }
            for r in results
        ]  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM ctl.data_quality_result WHERE run_id = :r"), {"r": run_id})
            if rows:
                conn.execute(
                    sa.text(
                        "INSERT INTO ctl.data_quality_result (run_id, check_name, severity, status, failing_count, "
                        "threshold, sample_keys, message, checked_at) "
                        "VALUES (:r, :name, :severity, :status, :failing, :threshold, :sample, :message, :at)"
                    ),
                    rows,
                )

    def close(self, run: Run, status: str, error: str | None = None) -> None:
        """Record the run's outcome and release the run lock."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE ctl.run SET status = :status, ended_at = :now, error_text = :error WHERE run_id = :r"
                    ),
                    {"status": status, "now": utc_now(), "error": error, "r": run.run_id},
                )
        finally:
            database.release_run_lock(run.lock_connection)
