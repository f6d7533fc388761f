"""The model beside the warehouse: every object of every group, row by row and value by value.

A group module (``issues``, ``reviews``, ``projects``) declares ``OBJECTS`` and gives ``expected(history)``
and ``actual(conn)``, both ``{object: {natural key: {column: value}}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import sqlalchemy as sa

from model import issues, projects, reviews
from model.history import History

GROUPS: tuple[ModuleType, ...] = (issues, reviews, projects)
MISSING = "<no row>"


@dataclass(frozen=True)
class Difference:
    object: str
    key: tuple[object, ...]
    column: str  # MISSING's column is the whole row
    expected: object
    actual: object

    def __str__(self) -> str:
        return f"{self.object} {self.key!r} {self.column}: model {self.expected!r}, warehouse {self.actual!r}"


def expected(history: History) -> dict[str, dict[tuple, dict[str, object]]]:
    found: dict[str, dict[tuple, dict[str, object]]] = {}
    for group in GROUPS:
        found.update(group.expected(history))
    return found


def actual(conn: sa.Connection) -> dict[str, dict[tuple, dict[str, object]]]:
    found: dict[str, dict[tuple, dict[str, object]]] = {}
    for group in GROUPS:
        found.update(group.actual(conn))
    return found


def differences(
    model: dict[str, dict[tuple, dict[str, object]]], warehouse: dict[str, dict[tuple, dict[str, object]]]
) -> list[Difference]:
    """Every row one side has and the other lacks, and every value that differs, in a stable order."""
    found = []
    for name in sorted(set(model) | set(warehouse)):
        want, have = model.get(name, {}), warehouse.get(name, {})
        for key in sorted(set(want) | set(have), key=repr):
            if key not in have:
                found.append(Difference(name, key, "row", want[key], MISSING))
            elif key not in want:
                found.append(Difference(name, key, "row", MISSING, have[key]))
            else:
                for column in sorted(set(want[key]) | set(have[key])):
                    if want[key].get(column, MISSING) != have[key].get(column, MISSING):
                        found.append(Difference(name, key, column, want[key].get(column, MISSING),
                                                have[key].get(column, MISSING)))  # fmt: skip
    return found


def describe(found: list[Difference], most: int = 12) -> str:
    """The first differences, one per line, and how many there are per object."""
    per_object: dict[str, int] = {}
    for difference in found:
        per_object[difference.object] = per_object.get(difference.object, 0) + 1
    lines = [f"{len(found)} differences ({', '.join(f'{o}: {n}' for o, n in per_object.items())})"]
    lines.extend(f"  {difference}" for difference in found[:most])
    return "\n".join(lines)
