"""Shrink a failing scenario to a short one that still fails, and print it as a regression test.

Greedy delta debugging: drop the days after the failure; then drop chunks of days, halving the chunk until
single days; then single changes; then the runs' options (faults, repeats, full refreshes, back-fills) and
runs. Each candidate is replayed on a fresh database; a candidate is kept when it still shows the same
defect: a difference in one of the objects the original differed in (a shrunk scenario may show it from
another side, in other rows). Without that, a long scenario's rare defect shrinks away into a commoner one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from model.replay import Failure
from model.scenario import Day, RunPlan, Scenario, as_python

Attempt = Callable[[Scenario], Failure | None]


def _with_days(scenario: Scenario, days: list[Day]) -> Scenario:
    return replace(scenario, days=tuple(days))


def _runs(scenario: Scenario) -> int:
    return sum(len(day.runs) for day in scenario.days)


def shrink(scenario: Scenario, failure: Failure, attempt: Attempt, budget: int = 80,
           report: Callable[[str], None] = print) -> tuple[Scenario, Failure]:  # fmt: skip
    """The smallest scenario found within ``budget`` replays that still fails, with its failure."""
    tries = 0
    original = failure

    def still_fails(candidate: Scenario) -> Failure | None:
        nonlocal tries
        if tries >= budget or _runs(candidate) == 0:
            return None
        tries += 1
        found = attempt(candidate)
        if found is not None and not original.same_defect(found):
            report(f"  shrink try {tries}: {len(candidate.days)} days, {_runs(candidate)} runs: another defect "
                   f"({found.what.splitlines()[0]})")  # fmt: skip
            return None
        report(f"  shrink try {tries}: {len(candidate.days)} days, {_runs(candidate)} runs: "
               f"{'still fails' if found else 'passes'}")  # fmt: skip
        return found

    days = [day for day in scenario.days if day.number <= failure.day]
    scenario = _with_days(scenario, days)
    chunk = max(1, len(days) // 2)
    while chunk >= 1:
        start = 0
        while start < len(days):
            candidate = days[:start] + days[start + chunk :]
            found = still_fails(_with_days(scenario, candidate)) if candidate else None
            if found:
                days, failure = candidate, found
            else:
                start += chunk
        chunk //= 2
    scenario = _with_days(scenario, days)
    for index in range(len(days)):
        changes = list(days[index].changes)
        position = 0
        while position < len(changes):
            trial = changes[:position] + changes[position + 1 :]
            candidate_days = list(days)
            candidate_days[index] = replace(days[index], changes=tuple(trial))
            found = still_fails(_with_days(scenario, candidate_days))
            if found:
                changes, days, failure = trial, candidate_days, found
            else:
                position += 1
    for index in range(len(days)):
        for position, run in enumerate(days[index].runs):
            plain = RunPlan(at=run.at)
            if run == plain:
                continue
            candidate_days = list(days)
            runs = list(days[index].runs)
            runs[position] = plain
            candidate_days[index] = replace(days[index], runs=tuple(runs))
            found = still_fails(_with_days(scenario, candidate_days))
            if found:
                days, failure = candidate_days, found
    return _with_days(scenario, days), failure


def regression_test(scenario: Scenario, failure: Failure) -> str:
    """A test to paste into tests/test_model_regressions.py."""
    body = as_python(scenario).replace("\n", "\n        ")
    what = str(failure).splitlines()[0]
    return (
        f"def test_seed_{scenario.seed}_shrunk_to_{len(scenario.days)}_days(model_warehouse: sa.Engine) -> None:\n"
        f'    """Found by the randomized comparison: {what}"""\n'
        f"    scenario = (\n        {body}\n    )\n"
        f"    assert replay(model_warehouse, scenario) is None\n"
    )
