"""Ring inputs at decision time: the live refund service links accounts from the store's
orders (shared device, address or card within the window) and a policy rule on the ring sees
them and cites the shared values, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from refund_helpers import RING_POLICY, T0, make_env, order_in
from tianping.refunds import orders as refund_orders
from tianping.refunds import policies, service, signals
from tianping.refunds import repository as repo
from tianping.refunds.schemas import RefundRequestIn


def _order(session, env, order_id, buyer, *, days_ago=5.0, **identity):
    data = order_in(order_id, buyer_id=buyer, paid_at=T0 - timedelta(days=days_ago))
    data = data.model_copy(update=identity)
    refund_orders.record_order(data, session=session, env=env)


@pytest.fixture
def env(session):
    e = make_env()
    policies.activate_policy(RING_POLICY, session=session, now=e.clock.now())
    # b1 and b2 share a device, b2 and b3 a card: one ring of three
    _order(session, e, "o1", "b1", device_id="D1", address_hash="A1")
    _order(session, e, "o2", "b2", days_ago=4, device_id="D1", payment_fingerprint="F1")
    _order(session, e, "o3", "b3", days_ago=3, payment_fingerprint="F1", address_hash="A3")
    # the same device half a year earlier: outside the 30-day window, linked to no one
    _order(session, e, "o4", "b4", days_ago=200, device_id="D1")
    # a parcel locker used by 25 accounts says where people are, not who runs them
    for i in range(25):
        _order(session, e, f"l{i}", f"locker{i}", days_ago=2, address_hash="LOCKER-7")
    # blanks and empty values never link
    _order(session, e, "o5", "b5", device_id="", payment_fingerprint="   ")
    _order(session, e, "o6", "b6", device_id="", payment_fingerprint="   ")
    session.commit()
    return e


def _claim(session, env, order_id):
    req = service.request_refund(
        RefundRequestIn(order_id=order_id, reason="quality", requested_amount_minor=10_000),
        session=session, env=env,
    )  # fmt: skip
    session.commit()
    return req, repo.decisions_of(session, req.id)[-1]


def test_the_store_links_accounts_into_rings_as_the_warehouse_would(session, env):
    rings = signals.ring_memberships(session, env.clock.now())
    assert sorted(rings) == ["b1", "b2", "b3"]
    assert {b: (r["ring_size"], r["ring_burst_accounts"]) for b, r in rings.items()} == {
        "b1": (3, 0), "b2": (3, 0), "b3": (3, 0),
    }  # fmt: skip
    assert rings["b2"]["ring_reason"] == "shares device D1 and card F1 with 2 other accounts"


def test_a_decision_sees_the_ring_and_cites_the_shared_values(session, env):
    # the first two claims: a ring, but no burst yet when each is decided
    _req, d1 = _claim(session, env, "o1")
    assert d1.action == "refund_only"
    assert (d1.inputs["ring_size"], d1.inputs["ring_burst_accounts"]) == (3, 0)
    env.clock.advance(hours=3)
    _req, d2 = _claim(session, env, "o2")
    assert d2.action == "refund_only" and d2.inputs["ring_burst_accounts"] == 1
    # the third account of the ring claims within 48 h of the others: to a person, with why
    env.clock.advance(hours=20)
    req, d3 = _claim(session, env, "o3")
    assert d3.action == "manual_review" and req.status == "manual_review"
    assert (d3.inputs["ring_size"], d3.inputs["ring_burst_accounts"]) == (3, 2)
    why = " ".join(r["merchant"] for r in d3.reasons)
    assert "card F1" in why and "device D1" in why and "2 of the ring's accounts" in why, why


def test_buyers_outside_a_ring_decide_with_no_ring_inputs(session, env):
    for order_id in ("o4", "l3", "o5"):
        _req, d = _claim(session, env, order_id)
        assert d.action == "refund_only"
        assert not {"ring_size", "ring_burst_accounts", "ring_reason"} & set(d.inputs), d.inputs


def test_a_burst_long_past_is_not_a_burst(session, env):
    _claim(session, env, "o1")
    env.clock.advance(hours=49)  # the next claim falls outside the 48 h window
    _claim(session, env, "o2")
    env.clock.advance(hours=49)
    _req, d = _claim(session, env, "o3")
    assert d.action == "refund_only" and d.inputs["ring_burst_accounts"] == 1


def test_the_store_finds_the_rings_the_warehouse_finds(session, tmp_path):
    """The simulator's ring scenario, its orders and claims copied into the store: the live
    service's ring inputs equal the warehouse's for every linked buyer, reasons included."""
    from sqlalchemy import insert

    from tianping.aftersales import ring_features
    from tianping.refunds.models import Order, RefundRequest
    from tianping.settings import Settings
    from tianping.simulate.service import load_scenario, run_simulation
    from tianping.warehouse import connect

    wh = connect(Settings(home=tmp_path, warehouse=f"duckdb://{tmp_path / 'w.duckdb'}"))
    try:
        run_simulation(wh, buyers=3_000, merchants=60, days=45, seed=5,
                       scenario=load_scenario("rings"))  # fmt: skip
        orders = wh.to_arrow(wh.table("orders")).to_pylist()
        refunds = wh.to_arrow(wh.table("refunds")).to_pylist()
        as_of = max(o["created_at"] for o in orders)
        expected = ring_features.buyer_rings(wh, as_of=as_of)
    finally:
        wh.close()
    identity = ("device_id", "address_hash", "payment_fingerprint")
    session.execute(insert(Order), [
        {"id": o["order_id"], "buyer_id": o["buyer_id"], "merchant_id": o["merchant_id"],
         "product_id": o["product_id"], "category": o["category"],
         "amount_minor": int(round(o["amount"] * 100)), "currency": "CNY", "coupon_minor": 0,
         "paid_at": o["created_at"], "recorded_at": o["created_at"], "refunded_minor": 0,
         "reserved_minor": 0, **{a: o[a] for a in identity}}
        for o in orders
    ])  # fmt: skip
    buyer_of = {o["order_id"]: (o["buyer_id"], o["merchant_id"]) for o in orders}
    session.execute(insert(RefundRequest), [
        {"id": r["refund_id"][:40], "order_id": r["order_id"], "buyer_id": buyer_of[r["order_id"]][0],
         "merchant_id": buyer_of[r["order_id"]][1], "reason": r["reason"],
         "requested_amount_minor": 1, "currency": "CNY", "evidence_urls": [], "status": "closed",
         "refunded_minor": 0, "returned": False, "created_at": r["requested_at"],
         "updated_at": r["requested_at"], "last_seq": 0}
        for r in refunds if r["requested_at"] <= as_of
    ])  # fmt: skip
    session.flush()

    live = signals.ring_memberships(session, as_of)
    linked = expected.ring >= 0
    want = {
        str(b): {"ring_size": int(expected.ring_size[i]),
                 "ring_burst_accounts": int(expected.ring_burst_accounts[i]),
                 "ring_reason": expected.reason(i)}
        for i, b in enumerate(expected.buyer_id) if linked[i]
    }  # fmt: skip
    assert len(want) >= 20, "the scenario should hold rings"
    assert sum(v["ring_burst_accounts"] >= 2 for v in want.values()) >= 5
    assert live == want
