"""Versioned procedures and views (Alembic cookbook "Replaceable Objects", sqitch "rework").

The editable text of each object lives in ``procs/<dialect>/<schema>/<object>.sql``. A revision that
creates or changes an object freezes a copy of that text, per dialect, at
``migrations/sql/<dialect>/<schema>.<object>/<revision>.sql`` (``python -m migrations.freeze``).
Upgrade applies the revision's frozen copy; downgrade re-applies the newest copy frozen by an
ancestor revision, or drops the object when the revision created it. Revisions never read
``procs/``, so an old revision applies exactly the text it was released with.

The text reaches the driver as-is: online through ``exec_driver_sql`` with no parameters (no bind
parsing, no ``%`` doubling), offline written straight to the script, and on SQL Server between
``GO`` separators because module DDL must start its own batch.
"""

from __future__ import annotations

from pathlib import Path

from alembic import context, op

SQL_ROOT = Path(__file__).resolve().parent / "sql"
KINDS = ("procedure", "function", "view")


def frozen_path(dialect: str, qualified_name: str, revision: str) -> Path:
    """Where ``revision`` keeps its copy of ``qualified_name`` (``schema.object``) for ``dialect``."""
    return SQL_ROOT / dialect / qualified_name / f"{revision}.sql"


def frozen_revisions(dialect: str, qualified_name: str) -> set[str]:
    """Revisions that froze a copy of ``qualified_name`` for ``dialect``."""
    folder = SQL_ROOT / dialect / qualified_name
    return {path.stem for path in folder.glob("*.sql")} if folder.exists() else set()


def _dialect() -> str:
    return str(op.get_context().dialect.name)


def run_as_is(sql: str) -> None:
    """Send ``sql`` to the database (or the offline script) exactly as written: no bind parsing, no ``%`` doubling."""
    migration = op.get_context()
    if migration.as_sql:
        impl = migration.impl
        if migration.dialect.name == "mssql":
            impl.static_output("GO")  # module DDL must start a batch: end whatever came before
            impl.static_output(sql.strip())
            impl.static_output("GO")
        else:
            impl.static_output(sql.strip())
        return
    op.get_bind().exec_driver_sql(sql, execution_options={"no_parameters": True})


def _previous_revision_with_copy(dialect: str, qualified_name: str, revision: str) -> str | None:
    """Nearest ancestor of ``revision`` that froze ``qualified_name``, following the revision graph."""
    have_copy = frozen_revisions(dialect, qualified_name)
    script = context.script
    current = script.get_revision(revision)
    for ancestor in script.iterate_revisions(current.down_revision, "base") if current.down_revision else ():
        if ancestor.revision in have_copy:
            return ancestor.revision
    return None


def apply_version(qualified_name: str, revision: str, dialects: tuple[str, ...] | None = None) -> None:
    """Create or replace ``qualified_name`` with the text frozen by ``revision``.

    ``dialects`` limits the object to some dialects (say, a helper only one of them needs); the
    revision must say why.
    """
    if dialects is not None and _dialect() not in dialects:
        return
    path = frozen_path(_dialect(), qualified_name, revision)
    if not path.exists():
        raise FileNotFoundError(
            f"revision {revision} has no frozen copy of {qualified_name} for {_dialect()} at {path}; "
            f"freeze it with `python -m migrations.freeze {revision} {qualified_name}`"
        )
    run_as_is(path.read_text(encoding="utf-8"))


def revert_version(qualified_name: str, revision: str, kind: str, dialects: tuple[str, ...] | None = None) -> None:
    """Undo ``revision``'s version of the object: restore the previous text, or drop the object."""
    if dialects is not None and _dialect() not in dialects:
        return
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {KINDS}")
    dialect = _dialect()
    previous = _previous_revision_with_copy(dialect, qualified_name, revision)
    if previous is None:
        drop_object(qualified_name, kind)
    else:
        run_as_is(frozen_path(dialect, qualified_name, previous).read_text(encoding="utf-8"))


def drop_object(qualified_name: str, kind: str) -> None:
    """Drop a procedure, function or view (also needed before a PostgreSQL signature change)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {KINDS}")
    run_as_is(f"DROP {kind.upper()} IF EXISTS {qualified_name};")
