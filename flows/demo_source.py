"""The demo operational database: `pmw source seed` and `pmw source advance`.

Builds, inside PostgreSQL and set-based, a ``ProjectManagement``-shaped source (schema ``dbo``) with
every object and quirk of shared/docs/source-contract.md, then simulates the application moving on
day by day. Randomness is a seeded hash of row numbers (see ``sql/demo_functions.sql``), so the same
``--seed``, ``--scale`` and ``--as-of`` give the same rows, and the same ``advance`` calls give the
same changes. The SQL lives in ``flows/sql/demo_*.sql``; each file is sent to the driver as-is.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.errors import SourceError

SQL_DIR = Path(__file__).resolve().parent / "sql"
HISTORY_DAYS = 3 * 365
ISSUES_PER_SCALE = 10_000
PROJECTS_PER_SCALE = 20
NEW_ISSUES_PER_DAY = {"ACC": 8, "Revizto": 4}  # per scale unit
REVIZTO_IMPORT_LAG = timedelta(hours=8)
NEW_PROJECT_EVERY_DAYS = 7
MAX_SEED = 2**31 - 1
# Revizto removes deleted issues (source-contract.md); flows/sql/demo_advance.sql keeps them here
REVIZTO_REMOVED = "pmw_demo.revizto_removed"

SOURCE_TABLES = (
    "clients",
    "project_types",
    "users",
    "projects",
    "project_aliases",
    "ProjectServices",
    "ServiceReviews",
    "IssueCategories",
    "issue_status_map",
    "issue_priority_map",
    "acc_issues",
    "revizto_issues",
    "ProcessedIssues",
)


@dataclass(frozen=True)
class StepTiming:
    """How long one generation step took."""

    step: str
    seconds: float


def _sql(name: str) -> str:
    return (SQL_DIR / f"demo_{name}.sql").read_text(encoding="utf-8")


def _run_file(conn: sa.Connection, name: str) -> None:
    conn.exec_driver_sql(_sql(name), execution_options={"no_parameters": True})


def is_seeded(engine: Engine) -> bool:
    """True when the demo source exists in this database."""
    with engine.connect() as conn:
        return bool(conn.execute(sa.text("SELECT to_regclass('pmw_demo.state') IS NOT NULL")).scalar())


def _check_postgresql(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        raise SourceError(
            f"the demo source can only be generated on PostgreSQL, not {engine.dialect.name}; "
            "point PMW_SOURCE_URL at PostgreSQL (or leave it unset for the embedded server)"
        )


def _open_generator(conn: sa.Connection, seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise SourceError(f"--seed {seed} is out of range; use a whole number from 0 to {MAX_SEED}")
    # The seed is an int checked above: formatting it into the function text is safe.
    functions = _sql("functions").replace("__SEED__", str(int(seed)))
    conn.exec_driver_sql(functions, execution_options={"no_parameters": True})


def _set_params(conn: sa.Connection, **values: object) -> None:
    """(Re)create pg_temp.params, the one-row table of parameters every demo SQL file reads."""
    conn.exec_driver_sql("DROP TABLE IF EXISTS pg_temp.params")
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE params ON COMMIT DROP AS SELECT "
            "CAST(:seed AS bigint) AS seed, CAST(:scale AS integer) AS scale, "
            "CAST(:window_start AS timestamp) AS window_start, CAST(:window_end AS timestamp) AS window_end, "
            "CAST(:project_count AS integer) AS project_count, CAST(:issue_count AS integer) AS issue_count, "
            "CAST(:tracker AS varchar(20)) AS tracker, CAST(:source_tz AS text) AS source_tz, "
            "CAST(:day_number AS integer) AS day_number, CAST(:is_seed AS boolean) AS is_seed"
        ),
        values,
    )


@contextmanager
def _timed(timings: list[StepTiming], step: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings.append(StepTiming(step, time.perf_counter() - started))


def default_anchor() -> datetime:
    """Start of the current UTC day: the demo source's "now" when none is given."""
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day)


def seed(
    engine: Engine,
    *,
    scale: int = 1,
    seed_value: int = 42,
    anchor: datetime | None = None,
    source_timezone: str = "Australia/Sydney",
    replace: bool = False,
) -> list[StepTiming]:
    """Create and fill the demo source; ``anchor`` (naive UTC) is the simulated application's now.

    Raises:
        SourceError: when the source exists and ``replace`` is false, or an argument is out of range.
    """
    _check_postgresql(engine)
    if scale < 1 or scale > 1000:
        raise SourceError(f"--scale {scale} is out of range; use 1 (about 10,000 issues) to 1000")
    anchor = (anchor or default_anchor()).replace(tzinfo=None, microsecond=0)
    if is_seeded(engine) and not replace:
        raise SourceError(
            "the demo source already exists in this database; use `pmw source advance` to move it on, "
            "or `pmw source seed --replace` to drop and recreate it (its data is lost)"
        )
    timings: list[StepTiming] = []
    total_issues = ISSUES_PER_SCALE * scale
    window_start = anchor - timedelta(days=HISTORY_DAYS)
    base = dict(
        seed=seed_value, scale=scale, window_start=window_start, window_end=anchor,
        project_count=PROJECTS_PER_SCALE * scale, issue_count=0, tracker="ACC",
        source_tz=source_timezone, day_number=0, is_seed=True,
    )  # fmt: skip
    with engine.begin() as conn:
        if replace:
            with _timed(timings, "drop existing source"):
                conn.exec_driver_sql("DROP SCHEMA IF EXISTS dbo CASCADE; DROP SCHEMA IF EXISTS pmw_demo CASCADE")
        with _timed(timings, "schema"):
            _run_file(conn, "schema")
            _open_generator(conn, seed_value)
            _set_params(conn, **base)
        with _timed(timings, "clients, users, categories, maps"):
            _run_file(conn, "masters")
        with _timed(timings, "projects and aliases"):
            _run_file(conn, "projects")
        with _timed(timings, "services and reviews"):
            _run_file(conn, "services")
        for tracker, share in (("ACC", 0.65), ("Revizto", 0.35)):
            with _timed(timings, f"{tracker} issues"):
                _set_params(conn, **{**base, "tracker": tracker, "issue_count": round(total_issues * share)})
                _run_file(conn, "issues")
        with _timed(timings, "processed issues"):
            _set_params(conn, **base)
            _run_file(conn, "processing")
        conn.execute(
            sa.text(
                "INSERT INTO pmw_demo.state (seed, scale, seeded_at, clock_at, day_number) "
                "VALUES (:seed, :scale, :anchor, :anchor, 0)"
            ),
            {"seed": seed_value, "scale": scale, "anchor": anchor},
        )
    with _timed(timings, "analyze"), engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    return timings


def advance(engine: Engine, *, days: int = 1, source_timezone: str = "Australia/Sydney") -> list[StepTiming]:
    """Simulate ``days`` more days of the application; each day commits on its own."""
    _check_postgresql(engine)
    if days < 1 or days > 3660:
        raise SourceError(f"--days {days} is out of range; use 1 to 3660")
    if not is_seeded(engine):
        raise SourceError("there is no demo source in this database yet; create it with `pmw source seed`")
    timings: list[StepTiming] = []
    for _ in range(days):
        with engine.begin() as conn:
            state = conn.execute(sa.text("SELECT seed, scale, clock_at, day_number FROM pmw_demo.state")).one()
            day = state.day_number + 1
            base = dict(
                seed=state.seed, scale=state.scale, window_start=state.clock_at,
                window_end=state.clock_at + timedelta(days=1), project_count=0, issue_count=0, tracker="ACC",
                source_tz=source_timezone, day_number=day, is_seed=False,
            )  # fmt: skip
            with _timed(timings, f"day {day}"):
                _open_generator(conn, state.seed)
                _set_params(conn, **base)
                conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {REVIZTO_REMOVED} (LIKE dbo.revizto_issues)")
                _run_file(conn, "advance")
                if day % NEW_PROJECT_EVERY_DAYS == 0:
                    _set_params(conn, **{**base, "project_count": state.scale})
                    _run_file(conn, "projects")
                    _run_file(conn, "services")
                for tracker, per_scale in NEW_ISSUES_PER_DAY.items():
                    lag = REVIZTO_IMPORT_LAG if tracker == "Revizto" else timedelta(0)
                    _set_params(
                        conn,
                        **{
                            **base,
                            "tracker": tracker,
                            "issue_count": per_scale * state.scale,
                            "window_start": base["window_start"] - lag,  # type: ignore[operator]
                            "window_end": base["window_end"] - lag,  # type: ignore[operator]
                        },
                    )
                    with _removed_lent_back(conn, tracker):
                        _run_file(conn, "issues")
                _set_params(conn, **base)
                _run_file(conn, "processing")
    return timings


@contextmanager
def _removed_lent_back(conn: sa.Connection, tracker: str) -> Iterator[None]:
    """While the generator adds new Revizto issues, the ones Revizto removed are back in its table (inside
    this transaction, seen by nobody else): it numbers new issues by counting rows, and a removed issue's id
    must never be given to a new one."""
    if tracker != "Revizto":
        yield
        return
    conn.exec_driver_sql(f"INSERT INTO dbo.revizto_issues SELECT * FROM {REVIZTO_REMOVED}")
    yield
    conn.exec_driver_sql(
        f"DELETE FROM dbo.revizto_issues AS r USING {REVIZTO_REMOVED} AS x "
        "WHERE r.revizto_project_id = x.revizto_project_id AND r.revizto_issue_id = x.revizto_issue_id"
    )


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per source table (and the issues view), for summaries and benchmarks."""
    with engine.connect() as conn:
        counts = {
            table: int(conn.exec_driver_sql(f'SELECT count(*) FROM dbo."{table}"').scalar() or 0)
            for table in SOURCE_TABLES
        }
        counts["vw_ProjectManagement_AllIssues"] = int(
            conn.exec_driver_sql('SELECT count(*) FROM dbo."vw_ProjectManagement_AllIssues"').scalar() or 0
        )
    return counts


def clock(engine: Engine) -> datetime | None:
    """The simulated application's current time (naive UTC), or None when not seeded (never on a database other
    than PostgreSQL: the generator is PL/pgSQL)."""
    if engine.dialect.name != "postgresql" or not is_seeded(engine):
        return None
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT clock_at FROM pmw_demo.state")).scalar()
