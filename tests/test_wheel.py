"""The built wheel carries what pmw reads at run time, and pmw works from it with no checkout in sight:
the migrations (revisions and frozen procedure texts), their Alembic options, the built-in checks.

(.ci/run also installs the wheel into a fresh virtual environment and runs `pmw demo` there.)"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from flows import migrate

pytestmark = pytest.mark.slow


def _tracked(*folders: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", *folders], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return listed.stdout.split()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from the checkout's tracked files only (a stale build/ cannot leak into it)."""
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know which files are the project's")
    source = tmp_path_factory.mktemp("source")
    for name in _tracked():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (path,) = dist.glob("pm_warehouse-*.whl")
    return path


def test_the_wheel_holds_every_runtime_file_and_no_development_one(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    runtime = [name for name in _tracked("flows", "migrations") if "__pycache__" not in name]
    assert [name for name in runtime if name not in names] == []
    assert any(name.startswith("migrations/sql/mssql/") for name in names)  # the frozen T-SQL texts
    assert not [name for name in names if name.startswith(("procs/", "tests/", "alembic.ini"))]


def test_pmw_upgrades_prints_and_checks_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    outside = tmp_path / "elsewhere"  # no alembic.ini, no migrations/ folder, no checkout on the path
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "PMW_HOME": str(outside / ".pmw")}
    where = subprocess.run(
        [sys.executable, "-c", "import flows, migrations, flows.quality as q, flows.migrate as m; "
         "print(flows.__file__, migrations.__file__, q.BUILT_IN_CHECKS, len(q.load_checks()), m.heads()[0])"],
        cwd=outside, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr[-3000:]
    flows_file, migrations_file, checks_file, checks, head = where.stdout.split()
    assert all(Path(path).is_relative_to(target) for path in (flows_file, migrations_file, checks_file))
    assert int(checks) > 30 and head == migrate.heads()[0]
    script = subprocess.run(
        [sys.executable, "-m", "flows.cli", "upgrade", "--sql", "--dialect", "mssql"],
        cwd=outside, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert script.returncode == 0, script.stderr[-3000:]
    assert script.stdout.startswith(":on error exit") and f"'{head}'" in script.stdout
    assert "CREATE OR ALTER PROCEDURE warehouse.load_dim_date" in script.stdout
    assert not (outside / ".pmw").exists()  # printing a script starts nothing


def test_pmw_sets_the_alembic_options_alembic_ini_sets() -> None:
    """`alembic upgrade head` in a checkout reads alembic.ini; pmw sets the same options itself."""
    ini = configparser.ConfigParser(defaults={"here": str(REPO_ROOT)})
    ini.read(REPO_ROOT / "alembic.ini")
    for option, value in migrate.ALEMBIC_OPTIONS.items():
        expected = ini.get("alembic", option)
        if option == "script_location":
            assert Path(value).resolve() == Path(expected).resolve()
        else:
            assert value == expected, option
