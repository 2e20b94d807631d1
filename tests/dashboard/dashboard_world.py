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

    for target, reason in ((1_000_000, "first plan"), (1_200_000, "618 came in strong")):
        store.transact(lambda s, target=target, reason=reason: set_goal(
            "gmv-2026", metric="gmv", target=target, deadline=date(2026, 12, 31), reason=reason,
            session=s, author="Ada"))  # fmt: skip
    keys = {
        "admin": make_key(app, "admin", name="Ada"),
        "operator": make_key(app, "operator", name="Oli"),
        "analyst": make_key(app, "analyst", name="Ana"),
        "service": make_key(app, "service"),
        "m1": make_key(app, "merchant", merchant_id="m1", name="Shop One"),
        "m2": make_key(app, "merchant", merchant_id="m2", name="Shop Two"),
    }
    return {"keys": keys, "refunds": refunds}
