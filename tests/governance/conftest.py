"""Governance fixtures: a store whose governance tables exist, rules naming three leaders."""

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


def ensure_governance_tables(engine) -> None:
    """Create the governance tables where no migration has made them yet (no-op otherwise)."""
    from tianping.governance import models
    from tianping.store import Base

    names = {m.__tablename__ for m in (models.GovernanceRules, models.Decision,
             models.DecisionVote, models.DecisionEvidence, models.AuditEntry)}  # fmt: skip
    tables = [t for t in Base.metadata.sorted_tables if t.name in names]
    Base.metadata.create_all(engine, tables=tables, checkfirst=True)


@pytest.fixture
def engine(store_url):
    from tianping.store import init_schema, make_engine

    eng = make_engine(store_url)
    init_schema(eng)
    ensure_governance_tables(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def ruled(session, clock):
    """A session whose store has the three-leader rules in force."""
    from tianping.governance.service import set_rules

    set_rules(RULES, session=session, actor="admin", clock=clock)
    return session
