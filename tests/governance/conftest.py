"""Governance fixtures: a fixed clock and rules naming three leaders."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tianping.clock import FixedClock

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LEADERS = ["ana", "bo", "chen"]
RULES = {
    "default": {"approvers": LEADERS, "required": 2, "veto": True, "expiry_days": 7},
    "kinds": {"spend": {"veto": False}},
    "spend_cap": {
        "cap_minor": 150_000_000,
        "currency": "CNY",
        "override_approvers": ["ceo", "cfo", "coo", "cto"],
        "override_required": 3,
    },
}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def ruled(session, clock):
    """A session whose store has the three-leader rules in force."""
    from tianping.governance.service import set_rules

    set_rules(RULES, session=session, actor="admin", clock=clock)
    return session
