"""Every state change outside governance reaches the audit log too (SQLite and PostgreSQL):
orders, refund transitions and timers, coupons, policy activation, API keys, with the API key that
made them, for one extra INSERT per refund transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from auth_helpers import make_key
from refund_helpers import LIFECYCLE_POLICY, make_env, order_json
from tianping.audit import log as audit
from tianping.refunds import policies
from tianping.server.app import create_app
from tianping.settings import Settings


@pytest.fixture
def client(store_url, tmp_path):
    app = create_app(Settings(home=tmp_path, store=store_url), env=make_env())
    with TestClient(app) as c:
        c.key = make_key(app, "service", name="checkout")
        c.headers.update({"Authorization": f"Bearer {c.key}"})
        c.store = app.state.store
        yield c


def _log(c, **where) -> list[dict]:
    f = audit.AuditFilter(**where)
    return c.store.read(lambda s: [audit.entry_dict(e) for e in audit.entries(session=s, where=f,
                                                                              limit=1000)])  # fmt: skip


def _key_id(c) -> str:
    return c.get("/v1/me").json()["key_id"]


def test_refund_transitions_are_audited_with_the_key_in_one_insert(client):
    c = client
    c.store.transact(lambda s: policies.activate_policy(LIFECYCLE_POLICY, session=s,
                                                        now=c.store.env.clock.now()))  # fmt: skip
    assert c.post("/v1/orders", json=order_json("o1", 10_000)).status_code == 201
    inserts = []
    engine = c.store.sessions.kw["bind"]

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_LOG"):
            inserts.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        body = {"order_id": "o1", "reason": "quality", "requested_amount_minor": 4000}
        r = c.post("/v1/refund-requests", json=body, headers={"Idempotency-Key": "a"})
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert r.status_code == 201, r.text
    refund = r.json()["id"]
    assert len(inserts) == 1  # both events in one statement
    rows = _log(c, subject=f"refund:{refund}")
    assert [(e["action"], e["actor"], e["key_id"]) for e in rows] == [
        ("refund.requested", "buyer:b1", _key_id(c)),
        ("refund.refund", "policy:lifecycle-test", _key_id(c)),
    ]
    assert rows[0]["detail"] == {"seq": 1, "from": None, "to": "requested", "via": "checkout"}
    assert rows[1]["detail"]["data"] == {"amount_minor": 4000, "payer": "merchant"}
    activated = _log(c, action="refund_policy.activated")
    assert [(e["subject"], e["detail"]["by"]) for e in activated] == [
        ("refund_policy:lifecycle-test", "operator")
    ]
    assert c.store.read(lambda s: audit.verify(session=s)).ok


def test_a_timer_firing_and_a_coupon_issued_are_audited(client):
    c = client
    c.store.transact(lambda s: policies.activate_policy(LIFECYCLE_POLICY, session=s,
                                                        now=c.store.env.clock.now()))  # fmt: skip
    c.post("/v1/orders", json=order_json("o2", 10_000))
    body = {"order_id": "o2", "reason": "not_received", "requested_amount_minor": 10_000}
    refund = c.post("/v1/refund-requests", json=body, headers={"Idempotency-Key": "b"}).json()["id"]
    c.store.env.clock.advance(days=3)
    from tianping.refunds import timers as refund_timers

    assert (
        c.store.transact(lambda s: refund_timers.tick(session=s, env=c.store.env))["timers_fired"]
        == 1
    )
    actions = [(e["action"], e["actor"], e["key_id"]) for e in _log(c, subject=f"refund:{refund}")]
    assert actions[-1] == ("refund.merchant_silent", "timer:merchant_response", None)
    coupon = {"coupon_id": "rp1", "buyer_id": "b9", "amount_minor": 500, "currency": "CNY",
              "expires_at": (c.store.env.clock.now() + timedelta(days=7)).isoformat()}  # fmt: skip
    assert c.post("/v1/coupons", json=coupon).status_code == 201
    [issued] = _log(c, subject="coupon:rp1")
    assert issued["action"] == "coupon.issued" and issued["actor"] == "checkout"
    assert issued["key_id"] == _key_id(c) and issued["detail"]["amount_minor"] == 500


def test_api_keys_created_and_revoked_are_audited(session):
    from datetime import UTC, datetime

    from tianping.auth import service

    now = datetime(2026, 3, 1, tzinfo=UTC)
    audit.acting_as(session, "cli:root")
    row, key = service.create("analyst", session=session, now=now, name="eve")
    service.revoke(row.id, session=session, now=now)
    rows = [audit.entry_dict(e) for e in audit.entries(session=session)]
    assert [(e["action"], e["subject"], e["actor"]) for e in rows] == [
        ("api_key.created", f"api_key:{row.id}", "cli:root"),
        ("api_key.revoked", f"api_key:{row.id}", "cli:root"),
    ]
    assert rows[0]["detail"] == {"role": "analyst", "name": "eve", "merchant_id": None}
    assert key not in str(rows)  # the key itself is never written down


def test_orders_their_delivery_and_a_packet_spent_on_one_are_audited_once(client):
    c = client
    expires = (c.store.env.clock.now() + timedelta(days=7)).isoformat()
    coupon = {"coupon_id": "rp2", "amount_minor": 300, "expires_at": expires}
    first = order_json("o3", 5_000, coupon=coupon, delivered=False)
    assert c.post("/v1/orders", json=first).status_code == 201
    assert c.post("/v1/orders", json=first).status_code == 200  # the same report again
    delivered = {**first, "delivered_at": first["paid_at"]}
    assert c.post("/v1/orders", json=delivered).status_code == 200
    order = [(e["action"], e["actor"], e["key_id"]) for e in _log(c, subject="order:o3")]
    assert order == [("order.recorded", "checkout", _key_id(c)),
                     ("order.delivered", "checkout", _key_id(c))]  # fmt: skip
    recorded = _log(c, action="order.recorded")[0]["detail"]
    assert recorded["amount_minor"] == 5_000 and recorded["coupon_id"] == "rp2"
    assert recorded["delivered_at"] is None
    packet = [(e["action"], e["detail"]) for e in _log(c, subject="coupon:rp2")]
    assert [a for a, _ in packet] == ["coupon.issued", "coupon.redeemed"]  # reported, then spent
    assert packet[1][1] == {"order_id": "o3", "amount_minor": 300}
    assert c.store.read(lambda s: audit.verify(session=s)).ok
