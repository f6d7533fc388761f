"""Alembic owns the schema: round trips, one head, frozen procedure versions, lock, offline scripts."""

from __future__ import annotations

import io
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from conftest import REPO_ROOT, create_database, drop_database, tsql_violations
from schema_snapshot import WAREHOUSE_SCHEMAS, snapshot

from flows import embedded, migrate
from flows.database import SUPPORTED_DIALECTS, object_texts
from migrations.replaceable import SQL_ROOT, frozen_path


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrate.alembic_config())


def _revision_order() -> list[str]:
    """Revision ids from base to head."""
    return [rev.revision for rev in reversed(list(_script().walk_revisions()))]


def _copies(dialect: str, qualified: str) -> list[str]:
    """Revisions (base to head) that froze a copy of ``qualified`` for ``dialect``."""
    return [rev for rev in _revision_order() if frozen_path(dialect, qualified, rev).exists()]


def _body(sql_text: str) -> str:
    """The PL/pgSQL body between the dollar quotes, as PostgreSQL stores it in prosrc."""
    return sql_text.split("$$", 2)[1]


def test_there_is_exactly_one_head() -> None:
    assert len(migrate.heads()) == 1


def test_upgrade_downgrade_upgrade_gives_an_identical_schema(engine: sa.Engine) -> None:
    migrate.upgrade("head")
    first = snapshot(engine)
    assert first["schemas"] == [(s,) for s in sorted(WAREHOUSE_SCHEMAS)]
    assert {row[1] for row in first["columns"]} >= {"run", "run_step", "watermark", "data_quality_result", "date"}
    assert first["version"] == [(migrate.heads()[0],)]

    migrate.downgrade("base")
    emptied = snapshot(engine)
    assert emptied["schemas"] == [] and emptied["columns"] == [] and emptied["routines"] == []
    assert emptied["version"] == []

    migrate.upgrade("head")
    assert snapshot(engine) == first


def test_constraint_names_follow_the_naming_convention(upgraded: sa.Engine) -> None:
    # contype 'n' (PostgreSQL 18's catalogued NOT NULL) is named by the server, not by DDL.
    names = {row[2]: row[3] for row in snapshot(upgraded)["constraints"] if row[3] != "n"}
    prefixes = {"p": "pk_", "f": "fk_", "u": "uq_", "c": "ck_"}
    for name, kind in names.items():
        assert name.startswith(prefixes[kind]), f"{name} ({kind}) does not follow the naming convention"
    assert "fk_run_step_run_id_run" in names and "uq_run_step_run_id_step_name" in names


def test_every_procs_file_equals_its_newest_frozen_copy() -> None:
    order = _revision_order()
    checked = 0
    for dialect in SUPPORTED_DIALECTS:
        for qualified, text in object_texts(dialect).items():  # a portable view as the dialect creates it
            copies = [rev for rev in order if frozen_path(dialect, qualified, rev).exists()]
            assert copies, f"{qualified} ({dialect}) has no frozen copy: freeze it in the revision that introduces it"
            newest = frozen_path(dialect, qualified, copies[-1]).read_text(encoding="utf-8")
            assert text == newest, (
                f"{qualified} ({dialect}) differs from its newest frozen copy ({copies[-1]}): write a revision "
                "and freeze it"
            )
            checked += 1
    assert checked >= 2  # at least the date loader in both dialects


@pytest.mark.parametrize("dialect", SUPPORTED_DIALECTS)
def test_every_frozen_copy_belongs_to_a_revision_that_applies_it(dialect: str) -> None:
    order = _revision_order()
    copies = list((SQL_ROOT / dialect).glob("*/*.sql"))
    assert copies
    assert {copy.stem for copy in copies} <= set(order), "a frozen copy names no revision"
    for index, revision in enumerate(order):
        buffer = io.StringIO()
        span = revision if index == 0 else f"{order[index - 1]}:{revision}"
        migrate.upgrade(span, sql=True, dialect=dialect, output=buffer)
        for copy in (c for c in copies if c.stem == revision):
            assert copy.read_text(encoding="utf-8").strip() in buffer.getvalue(), (
                f"revision {revision} does not apply {copy.parent.name} for {dialect}"
            )


def test_procedure_text_reaches_the_database_as_is(upgraded: sa.Engine) -> None:
    newest = _copies("postgresql", "warehouse.load_dim_date")[-1]
    frozen = frozen_path("postgresql", "warehouse.load_dim_date", newest).read_text(encoding="utf-8")
    assert "%" in frozen  # RAISE format strings: a driver that parsed parameters would mangle them
    with upgraded.connect() as conn:
        stored = conn.execute(sa.text("SELECT prosrc FROM pg_proc WHERE proname = 'load_dim_date'")).scalar_one()
    assert stored == _body(frozen)


def test_downgrade_restores_the_previous_procedure_text_and_upgrade_reapplies(upgraded: sa.Engine) -> None:
    previous, head = _copies("postgresql", "warehouse.load_dim_date")[-2:]
    v_previous = frozen_path("postgresql", "warehouse.load_dim_date", previous).read_text(encoding="utf-8")
    v_head = frozen_path("postgresql", "warehouse.load_dim_date", head).read_text(encoding="utf-8")
    assert v_previous != v_head

    def stored() -> str:
        with upgraded.connect() as conn:
            return str(conn.execute(sa.text("SELECT prosrc FROM pg_proc WHERE proname = 'load_dim_date'")).scalar_one())

    order = _revision_order()
    migrate.downgrade(order[order.index(head) - 1])  # undo the revision that froze the newest text
    assert stored() == _body(v_previous)
    with upgraded.begin() as conn:  # the restored version runs against the downgraded table
        conn.execute(sa.text("CALL warehouse.load_dim_date(DATE '2024-07-01', DATE '2024-07-02', 7)"))
    migrate.upgrade("head")
    assert stored() == _body(v_head)


def test_downgrade_of_the_creating_revision_drops_the_procedure(upgraded: sa.Engine) -> None:
    migrate.downgrade("base")
    migrate.upgrade(_revision_order()[0])
    migrate.downgrade("base")
    with upgraded.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM pg_proc WHERE proname = 'load_dim_date'")).scalar() == 0


def test_a_second_migration_waits_for_the_lock(engine: sa.Engine, database_url) -> None:  # type: ignore[no-untyped-def]
    holder = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    finished: list[float] = []
    with holder.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(hashtext('pmw:migrations'))"))
        worker = threading.Thread(target=lambda: (migrate.upgrade("head"), finished.append(time.monotonic())))
        worker.start()
        time.sleep(2)
        assert not finished, "the upgrade ran while another session held the migration lock"
        assert snapshot(engine)["version"] == []
        released_at = time.monotonic()
        conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext('pmw:migrations'))"))
        worker.join(timeout=60)
    holder.dispose()
    assert finished and finished[0] >= released_at
    assert snapshot(engine)["version"] == [(migrate.heads()[0],)]


# --- offline scripts ------------------------------------------------------------------------------


def _offline(dialect: str) -> str:
    buffer = io.StringIO()
    migrate.upgrade("head", sql=True, dialect=dialect, output=buffer)
    return buffer.getvalue()


def test_offline_postgresql_script_builds_the_same_schema_through_psql(server_admin_url, engine) -> None:  # type: ignore[no-untyped-def]
    script = _offline("postgresql")
    assert script.lstrip().startswith("BEGIN;") and script.rstrip().endswith("COMMIT;")
    assert "pg_advisory_xact_lock" in script

    migrate.upgrade("head")
    online = snapshot(engine)

    target = create_database(server_admin_url, prefix="pmw_offline")
    try:
        psql = embedded.client_binary("psql")
        result = subprocess.run(
            [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target.render_as_string(hide_password=False)
             .replace("postgresql+psycopg", "postgresql")],
            input=script, text=True, capture_output=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        offline_engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
        assert snapshot(offline_engine) == online
        offline_engine.dispose()
    finally:
        drop_database(server_admin_url, target)


MODULE_DDL = re.compile(r"^\s*CREATE\s+(OR\s+ALTER\s+)?(PROCEDURE|PROC|VIEW|FUNCTION|TRIGGER|SCHEMA)\b", re.I)


def _batches(script: str) -> list[str]:
    return [b for b in re.split(r"^GO\s*$", script, flags=re.M) if b.strip()]


def _statements_before(batch: str, match_start: int) -> str:
    """Text before the module DDL with comments removed: must be empty for a valid batch."""
    head = batch[:match_start]
    return re.sub(r"--[^\n]*", "", head).strip()


def test_offline_mssql_script_is_batch_separated_and_stops_at_the_first_error() -> None:
    script = _offline("mssql")
    assert script.lstrip().startswith(":on error exit")
    batches = _batches(script)
    assert "BEGIN TRANSACTION" in batches[1] and "sp_getapplock" in batches[1]
    assert batches[-1].strip() == "COMMIT;"
    module_batches = 0
    for batch in batches:
        found = re.search(r"CREATE\s+(OR\s+ALTER\s+)?(PROCEDURE|PROC|VIEW|FUNCTION|TRIGGER|SCHEMA)\b", batch, re.I)
        if found:
            module_batches += 1
            assert _statements_before(batch, found.start()) == "", f"module DDL does not start its batch:\n{batch}"
            modules = r"\bCREATE\s+(OR\s+ALTER\s+)?(PROCEDURE|PROC|VIEW|FUNCTION|TRIGGER|SCHEMA)\b"
            assert len(re.findall(modules, batch, re.I)) == 1, f"two modules in one batch:\n{batch}"
    heads = migrate.heads()
    assert module_batches >= len(WAREHOUSE_SCHEMAS) + 2
    assert f"VALUES ('{_revision_order()[0]}')" in script and f"SET version_num='{heads[0]}'" in script


def test_every_batch_of_the_mssql_script_parses_as_tsql() -> None:
    script = _offline("mssql").replace(":on error exit", "")
    for batch in _batches(script):
        assert tsql_violations(batch) == [], batch[:400]


def test_every_mssql_procedure_file_parses_as_tsql_and_has_no_batch_separator() -> None:
    texts = {
        **object_texts("mssql"),
        **{str(p): p.read_text(encoding="utf-8") for p in (SQL_ROOT / "mssql").glob("*/*.sql")},
    }
    assert texts
    for path, text in texts.items():
        assert not re.search(r"^\s*GO\s*$", text, flags=re.M), f"{path} contains GO: one object per file"
        assert tsql_violations(text) == [], path
        if re.search(r"CREATE\s+OR\s+ALTER\s+PROCEDURE", text, re.I):  # a function may not SET options
            assert "SET NOCOUNT ON" in text and "SET XACT_ABORT ON" in text, path


def test_the_tsql_check_rejects_malformed_procedures() -> None:
    broken = "CREATE OR ALTER PROCEDURE warehouse.broken AS\nBEGIN\n    SELECT FROM WHERE (;\nEND\n"
    assert tsql_violations(broken)


@pytest.mark.parametrize("dialect", SUPPORTED_DIALECTS)
def test_offline_downgrade_script_restores_the_previous_version(dialect: str) -> None:
    buffer = io.StringIO()
    order = _revision_order()
    previous_copy, newest_copy = _copies(dialect, "warehouse.load_dim_date")[-2:]
    migrate.downgrade(f"head:{order[order.index(newest_copy) - 1]}", sql=True, dialect=dialect, output=buffer)
    previous = frozen_path(dialect, "warehouse.load_dim_date", previous_copy).read_text(encoding="utf-8").strip()
    assert previous in buffer.getvalue()


def test_alembic_cli_from_the_repository_root_upgrades_the_configured_warehouse(engine: sa.Engine) -> None:
    alembic = Path(REPO_ROOT / ".venv" / "bin" / "alembic")
    executable = str(alembic) if alembic.exists() else "alembic"
    result = subprocess.run([executable, "upgrade", "head"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert snapshot(engine)["version"] == [(migrate.heads()[0],)]
