"""Racing approvals move a decision exactly once; frozen evidence never changes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal

import pyarrow as pa
import pytest
from governance_data import RULES

from fixtures_events import load
from tianping.audit import log as audit
from tianping.audit.canonical import Frozen, sha256
from tianping.errors import Conflict
from tianping.events.schema import TABLES
from tianping.governance.service import Proposal, get_or_raise, propose, set_rules, vote
from tianping.governance.sources import capture
from tianping.store import make_sessionmaker
from tianping.warehouse.backend import arrow_schema

SPEND = {"amount_minor": 50_000_000, "currency": "CNY", "purpose": "red packets for new buyers"}


def _race(sessions, decision_id: int, voters: list[str], clock) -> list[str]:
    """Every voter approves at the same moment, each in its own transaction."""
    gate = threading.Barrier(len(voters))

    def cast(voter: str) -> str:
        with sessions() as s:
            gate.wait()
            try:
                result = vote(decision_id, "approve", session=s, actor=voter, clock=clock)
                s.commit()
                return result.transition or "recorded"
            except Conflict:
                s.rollback()
                return "refused"

    with ThreadPoolExecutor(len(voters)) as pool:
        return sorted(pool.map(cast, voters))


@pytest.mark.parametrize(
    ("approvers", "required", "first", "racers"),
    [
        (["ana", "bo", "chen"], 2, ["ana"], ["bo", "chen"]),  # the second and third approval race
        (["a1", "a2", "a3", "a4", "a5", "a6"], 3, ["a1"], ["a2", "a3", "a4", "a5", "a6"]),
    ],
)
def test_racing_approvals_change_the_state_exactly_once(
    engine, clock, approvers, required, first, racers
):
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        set_rules({"default": {"approvers": approvers, "required": required}},
                  session=s, actor="admin", clock=clock)  # fmt: skip
        s.commit()
    for _ in range(3):
        with sessions() as s:
            d = propose(Proposal("Budget", "spend", SPEND), session=s, actor="dan", clock=clock)
            for voter in first:
                vote(d.id, "approve", session=s, actor=voter, clock=clock)
            s.commit()
            decision_id = d.id
        outcomes = _race(sessions, decision_id, racers, clock)
        assert outcomes.count("approved") == 1
        assert outcomes.count("recorded") == required - len(first) - 1
        assert outcomes.count("refused") == len(racers) - (required - len(first))
        with sessions() as s:
            d = get_or_raise(decision_id, session=s)
            assert d.status == "approved" and len(d.votes) == required
            moves = audit.entries(session=s, where=audit.AuditFilter(subject=f"decision:{decision_id}",
                                  action="decision.approved"))  # fmt: skip
            assert len(moves) == 1
    with sessions() as s:
        assert audit.verify(session=s).ok  # concurrent appends never fork the chain


def test_evidence_stays_byte_identical_after_new_data(engine, clock, duckdb_warehouse):
    wh = duckdb_warehouse
    load(wh)
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        set_rules(RULES, session=s, actor="admin", clock=clock)
        p = Proposal("Budget", "spend", SPEND, evidence=["metric:gmv@month"],
                     documents=[("plan", {"weeks": 6, "cost": Decimal("500000.00")})])  # fmt: skip
        d = propose(p, session=s, actor="dan", clock=clock, warehouse=wh)
        s.commit()
        decision_id = d.id
        before = [(e.ref, e.content, e.sha256) for e in d.evidence]
    assert [ref for ref, _, _ in before] == ["metric:gmv@month", "document:plan"]
    assert before[1][1] == '{"cost":"500000.00","weeks":6}'

    wh.append("orders", _late_order())  # new data for a month already in the snapshot
    with sessions() as s:
        fresh = capture("metric:gmv@month", session=s, warehouse=wh)[1]
        assert Frozen.of(fresh).content != before[0][1]  # the metric moved...
        d = get_or_raise(decision_id, session=s)
        after = [(e.ref, e.content, e.sha256) for e in d.evidence]
    assert after == before  # ...the decision's copy did not
    assert all(sha256(content) == digest for _, content, digest in after)


def _late_order() -> pa.Table:
    row = {"order_id": "o99", "buyer_id": "b9", "merchant_id": "m1", "category": "food",
           "amount": Decimal("999.00"), "created_at": datetime(2024, 1, 20, 12), "product_id": None,
           "coupon_amount": None, "delivered_at": None, "delivery_mode": None, "channel": None}  # fmt: skip
    return pa.Table.from_pylist([row], schema=arrow_schema(TABLES["orders"]))
