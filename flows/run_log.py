"""The run log: the only module that writes ``ctl``.

A run takes the run lock on a connection it holds to the end; a second run that cannot get it is
recorded as ``skipped`` and writes nothing else. A run that gets the lock first marks any run still
``running`` as ``failed``: holding the lock proves its owner is gone. Steps record their row counts
and durations; watermarks move in one transaction, after the dimensions have committed the rows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows import database
from flows.errors import MigrationInProgress
from flows.extract import ExtractWindow
from flows.quality import CheckResult

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
    """Row counts of one step, filled in by the step's work."""

    rows_read: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_closed: int = 0
    rows_deleted: int = 0

    def add(self, other: StepCounts) -> None:
        for name in ("rows_read", "rows_inserted", "rows_updated", "rows_closed", "rows_deleted"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


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
    return text.strip()[:MAX_ERROR_CHARS]


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
    ) -> Run | None:
        """Start a run, or record a skipped one and return None when another run holds the lock.

        A run also holds the migration lock shared: one started while a migration runs waits up to
        ``migration_wait_seconds`` for it, then refuses (MigrationInProgress) having written nothing, as it
        does when the warehouse is not at the code's revision.
        """
        lock_connection = self.engine.connect()
        try:
            acquired = database.try_run_lock(lock_connection)
            lock_connection.commit()
            if acquired:
                self._check_no_migration(lock_connection, migration_wait_seconds)
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
            yield counts
        except BaseException as exc:
            status, error = "failed", error_text(exc)
            raise
        finally:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE ctl.run_step SET status = :status, ended_at = :ended, duration_ms = :ms, "
                        "rows_read = :rows_read, rows_inserted = :rows_inserted, rows_updated = :rows_updated, "
                        "rows_closed = :rows_closed, rows_deleted = :rows_deleted, error_text = :error "
                        "WHERE run_id = :run_id AND step_name = :step"
                    ),
                    {
                        "status": status, "ended": utc_now(), "ms": round((time.perf_counter() - clock) * 1000),
                        "error": error, "run_id": run_id, "step": name, **counts.__dict__,
                    },
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

        The new watermark is the newest cursor value staged, never below the old one.
        """
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE ctl.run_source SET watermark_after = CASE "
                    "WHEN newest_cursor IS NULL THEN watermark_before "
                    "WHEN watermark_before IS NULL OR newest_cursor > watermark_before THEN newest_cursor "
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
