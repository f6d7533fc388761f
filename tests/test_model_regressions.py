# ruff: noqa: E501  (scenarios are pasted as tests/model_check.py prints them)
"""Scenarios the randomized comparison (tests/model_check.py) found the warehouse and the model to differ
on, shrunk by it to the fewest days and changes that still differed, pasted as printed. Each passes since
its fix; the closing note of issue #14 lists them."""

from __future__ import annotations

import datetime

import pytest
import sqlalchemy as sa
from model.replay import replay
from model.scenario import Change, Day, RunPlan, Scenario

pytestmark = pytest.mark.slow


def test_seed_4_shrunk_to_2_days(model_warehouse: sa.Engine) -> None:
    """Found by the randomized comparison: an issue created and flag-deleted between two runs had no snapshot
    row for the day it lived (fact.issue_daily 2025-10-19, ACC a-1 2009: the model's row, the warehouse none)."""
    scenario = Scenario(seed=4, start=datetime.datetime(2025, 9, 29, 10, 21, tzinfo=datetime.UTC), days=(
        Day(number=19, changes=(
        ), runs=(RunPlan(at=27462, repeat=False, fault=None, full_refresh=False, backfill_days=None), )),
        Day(number=20, changes=(
            Change(at=28874, commit=28874, kind='new_issue', args={'tracker': 'ACC', 'tproj': 'a-1', 'issue': '2009', 'status': 'in_review', 'priority': 'Minor'}),
            Change(at=29178, commit=29178, kind='flag_deleted', args={'tracker': 'ACC', 'tproj': 'a-1', 'issue': '2009'}),
        ), runs=(RunPlan(at=30032, repeat=False, fault=None, full_refresh=False, backfill_days=None), )),
    ))  # fmt: skip
    assert replay(model_warehouse, scenario) is None


def test_seed_10_an_unresolved_issue_read_again_unchanged_is_not_resolved_for_its_past(model_warehouse: sa.Engine) -> None:
    """Found by the randomized comparison (seed 10, day 18; written small by hand): tracker project 102 is named
    'Coastal Clinic', like projects 4 and 5, so its issues are unresolved; project 5 is renamed, and a full
    refresh reads issue 1009 again, unchanged: the warehouse resolved it to project 4 for every past day, where
    a project is resolved when a new state of the issue is loaded."""
    scenario = Scenario(seed=10, start=datetime.datetime(2026, 3, 20, 1, 0, tzinfo=datetime.UTC), days=(
        Day(number=0, changes=(), runs=(RunPlan(at=60),)),
        Day(number=1, changes=(
            Change(at=1500, commit=1500, kind='rename_project', args={'project': 5, 'name': 'Renamed 5', 'touch': False}),
        ), runs=(RunPlan(at=1600, full_refresh=True),)),
    ))  # fmt: skip
    assert replay(model_warehouse, scenario) is None


def test_seed_101_a_backfill_before_the_first_run_extends_the_snapshot_back(model_warehouse: sa.Engine) -> None:
    """Found by the randomized comparison (seed 101, shrunk to its one run): the first run back-fills from three
    days before its as-of date; the warehouse adds those days (README, Backfilling: history is extended back)
    and their project month, where the model began the snapshot at the first run's date. The model was wrong."""
    scenario = Scenario(seed=101, start=datetime.datetime(2026, 3, 25, 6, 38, tzinfo=datetime.UTC), days=(
        Day(number=7, changes=(
        ), runs=(RunPlan(at=10374, repeat=False, fault=None, full_refresh=False, backfill_days=3), )),
    ))  # fmt: skip
    assert replay(model_warehouse, scenario) is None
