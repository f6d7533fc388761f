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
