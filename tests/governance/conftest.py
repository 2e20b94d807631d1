"""Governance fixtures: a fixed clock and a session with the three-leader rules in force."""

from __future__ import annotations

import pytest
from governance_data import RULES, T0

from tianping.clock import FixedClock


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def ruled(session, clock):
    """A session whose store has the three-leader rules in force."""
    from tianping.governance.service import set_rules

    set_rules(RULES, session=session, actor="admin", clock=clock)
    return session
