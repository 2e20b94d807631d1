"""A small world for the dashboard tests: two merchants' orders and refunds, one of them
waiting for manual review, a decision, a goal, and a key per role."""

from __future__ import annotations

from auth_helpers import make_key
from refund_helpers import LIFECYCLE_POLICY, order_json
from tianping.refunds import policies


def populate(app, client) -> dict:
    """Fill ``app``'s store through the API; returns the keys and the ids made."""
    store = app.state.store
    store.transact(lambda s: policies.activate_policy(LIFECYCLE_POLICY, session=s,
                                                      now=store.env.clock.now()))  # fmt: skip
    service = {"Authorization": f"Bearer {make_key(app, 'service')}"}
    refunds = {}
    for order_id, merchant, reason in (("o1", "m1", "empty_parcel"), ("o2", "m1", "quality"),
                                       ("o3", "m2", "quality")):  # fmt: skip
        r = client.post("/v1/orders", json=order_json(order_id, 20_000, merchant_id=merchant),
                        headers=service)  # fmt: skip
        assert r.status_code == 201, r.text
        body = {"order_id": order_id, "reason": reason, "requested_amount_minor": 5_000}
        r = client.post("/v1/refund-requests", json=body,
                        headers={**service, "Idempotency-Key": order_id})  # fmt: skip
        assert r.status_code == 201, r.text
        refunds[order_id] = r.json()
    from datetime import date

    from tianping.goals.service import set_goal

    for target, reason, forced in ((1_000_000, "first plan", None),
                                   (1_200_000, "618 came in strong", "Ada")):  # fmt: skip
        store.transact(lambda s, target=target, reason=reason, forced=forced: set_goal(
            "gmv-2026", metric="gmv", target=target, deadline=date(2026, 12, 31), reason=reason,
            session=s, author="Ada", forced_by=forced, clock=store.env.clock))  # fmt: skip
    keys = {
        "admin": make_key(app, "admin", name="Ada"),
        "operator": make_key(app, "operator", name="Oli"),
        "analyst": make_key(app, "analyst", name="Ana"),
        "service": make_key(app, "service"),
        "m1": make_key(app, "merchant", merchant_id="m1", name="Shop One"),
        "m2": make_key(app, "merchant", merchant_id="m2", name="Shop Two"),
    }
    return {"keys": keys, "refunds": refunds}


REPLAY = {"policy": "taobao-2024-08", "version": "ab" * 32,
          "sections": {"window": [{"from": "2024-07-01", "to": "2024-07-31", "requests": 40,
                                   "unmatched": 0}],
                       "outcome": [{"policy": "taobao-2024-08@abababababab", "refunded": "812.50"}]}}  # fmt: skip


def seed_governance(app) -> int:
    """Rules naming Ada, Oli and Bo (two of three), and a spend proposed by Ana; its id."""
    from tianping.governance import service

    store = app.state.store

    def work(s):
        service.set_rules({"default": {"approvers": ["Ada", "Oli", "Bo"], "required": 2}},
                          session=s, actor="Ada")  # fmt: skip
        p = service.Proposal("Door-delivery pilot", "spend",
                             {"amount_minor": 80_000_000, "currency": "CNY",
                              "purpose": "door delivery in 3 cities"},
                             documents=(("plan", {"cities": 3}),))  # fmt: skip
        return service.propose(p, session=s, actor="Ana", key_id="k-ana").id

    return store.transact(work)


def seed_replay(app, decision_id: int) -> None:
    """A policy replay frozen as a decision's evidence (as ``--evidence policy-replay:`` does;
    the replay itself needs the warehouse, which these tests do not build)."""
    from tianping.audit import canonical
    from tianping.governance.models import DecisionEvidence

    store = app.state.store
    text = canonical.dumps(REPLAY)
    store.transact(lambda s: s.add(DecisionEvidence(
        decision_id=decision_id, position=99, kind="policy-replay",
        ref="policy-replay:taobao-2024-08@2024-07-01..2024-07-31", content=text,
        sha256=canonical.sha256(text), captured_at=store.env.clock.now())))  # fmt: skip
