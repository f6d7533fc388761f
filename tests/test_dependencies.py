"""pyproject.toml declares what the code imports, and nothing else: a package that arrives by chance through
another one can leave with that one's next release; a package declared and never used costs every install."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from conftest import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
CI_SCRIPT = (REPO_ROOT / ".ci" / "run").read_text()
# where a module may be imported from without being a distribution (pytest's pythonpath: ".", "tests")
LOCAL_ROOTS = [REPO_ROOT, REPO_ROOT / "tests", REPO_ROOT / "tests" / "benchmarks"]


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(requirements: list[str]) -> set[str]:
    return {_normalised(re.match(r"[A-Za-z0-9._-]+", requirement).group()) for requirement in requirements}  # type: ignore[union-attr]


def _is_local(module: str) -> bool:
    return any((root / module).is_dir() or (root / f"{module}.py").is_file() for root in LOCAL_ROOTS)


def _imported_distributions(*folders: str) -> dict[str, set[str]]:
    """Distribution -> the files importing it, for every absolute import under ``folders``."""
    owners = packages_distributions()
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in (name.split(".")[0] for name in modules):
                    if module in sys.stdlib_module_names or _is_local(module):
                        continue
                    assert module in owners, f"{path.relative_to(REPO_ROOT)} imports {module!r}, which nothing installs"
                    for distribution in owners[module]:
                        found.setdefault(_normalised(distribution), set()).add(str(path.relative_to(REPO_ROOT)))
    return found


def test_the_runtime_dependencies_are_exactly_what_the_package_imports() -> None:
    imported = _imported_distributions("flows", "migrations")
    declared = _declared(PYPROJECT["project"]["dependencies"])
    undeclared = {name: sorted(files)[:3] for name, files in imported.items() if name not in declared}
    assert not undeclared, f"imported but not in [project.dependencies]: {undeclared}"
    assert not declared - set(imported), (
        f"declared but imported by nothing in flows/ or migrations/: {declared - set(imported)}"
    )


def test_the_dev_dependencies_are_what_the_tests_import_and_the_tools_ci_runs() -> None:
    runtime = _declared(PYPROJECT["project"]["dependencies"])
    imported = set(_imported_distributions("tests")) - runtime
    declared = _declared(PYPROJECT["project"]["optional-dependencies"]["dev"])
    # a tool is declared for what uses it, and that use is checked here
    tools = {
        "pytest-timeout": "timeout" in PYPROJECT["tool"]["pytest"]["ini_options"],
        "ruff": ".venv/bin/ruff check" in CI_SCRIPT and ".venv/bin/ruff format --check" in CI_SCRIPT,
        "mypy": ".venv/bin/mypy" in CI_SCRIPT,
    }
    assert all(tools.values()), tools
    assert not imported - declared, f"tests import, [dev] does not declare: {imported - declared}"
    assert declared == imported | set(tools), f"declared for nothing: {declared - imported - set(tools)}"


def test_ci_lints_and_type_checks_before_the_tests() -> None:
    lines = [line.strip() for line in CI_SCRIPT.splitlines() if line.strip().startswith(".venv/bin/")]
    order = [next(i for i, line in enumerate(lines) if line.startswith(tool)) for tool in (
        ".venv/bin/ruff check", ".venv/bin/ruff format --check", ".venv/bin/mypy", ".venv/bin/pytest"
    )]  # fmt: skip
    assert order == sorted(order), lines
