"""The JSON API exactly as the issue specifies it (SQLite and PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from auth_helpers import bearer
from refund_helpers import LIFECYCLE_POLICY, make_env, order_json
from tianping.ledger import service as ledger
from tianping.ledger.models import LedgerEntry, LedgerTransfer
from tianping.refunds import policies
from tianping.refunds import reconcile as refund_reconcile
from tianping.refunds import repository as repo
from tianping.refunds.models import RefundRequest
from tianping.server.app import create_app
from tianping.settings import Settings


@pytest.fixture
def client(store_url, tmp_path):
    app = create_app(Settings(home=tmp_path, store=store_url), env=make_env())
    with TestClient(app) as c:
        c.headers.update(bearer(app))  # an admin key: roles are tested in tests/auth
        store = app.state.store
        store.transact(
            lambda s: policies.activate_policy(
                LIFECYCLE_POLICY, session=s, now=store.env.clock.now()
            )
        )
        c.store = store
        yield c


def _refund(c, key, order_id="o1", amount=10_000, reason="quality", **extra):
    body = {"order_id": order_id, "reason": reason, "requested_amount_minor": amount, **extra}
    return c.post("/v1/refund-requests", json=body, headers={"Idempotency-Key": key})


def _order(c, order_id="o1", amount=10_000, **kw):
    r = c.post("/v1/orders", json=order_json(order_id, amount, **kw))
    assert r.status_code in (200, 201), r.text
    return r


def test_order_then_refund_returns_the_decision(client):
    assert _order(client).status_code == 201
    assert _order(client).status_code == 200  # the same report again
    r = _refund(client, "k1", amount=4000, evidence_urls=["https://img/1.jpg"])
    assert r.status_code == 201
    body = r.json()
    assert body["status"] == "refunded" and body["id"].startswith("rf_")
    d = body["decision"]
    assert {k: d[k] for k in ("action", "refund_amount_minor", "requires_return", "payer")} == {
        "action": "refund_only",
        "refund_amount_minor": 4000,
        "requires_return": False,
        "payer": "merchant",
    }
    assert d["policy_version"] == LIFECYCLE_POLICY.version
    assert d["reasons"][0]["code"] == "r"
    got = client.get(f"/v1/refund-requests/{body['id']}").json()
    assert [e["event"] for e in got["events"]] == ["requested", "refund"]
    led = client.get("/v1/orders/o1/ledger").json()
    assert led["totals"] == {
        "paid_minor": 10_000,
        "refunded_minor": 4000,
        "refundable_minor": 6000,
        "coupon_minor": 0,
        "currency": "CNY",
    }
    assert sum(e["amount_minor"] for e in led["entries"]) == 0


def test_the_default_policy_decides_with_its_version_and_reasons(store_url, tmp_path):
    app = create_app(Settings(home=tmp_path, store=store_url), env=make_env())
    with TestClient(app) as c:
        c.headers.update(bearer(app))  # an admin key: roles are tested in tests/auth
        _order(c, amount=2000)
        d = _refund(c, "k", amount=2000, reason="quality").json()["decision"]
    default = policies.resolve_policy(policies.DEFAULT_POLICY)
    assert d["policy_version"] == default.version
    assert d["reasons"] and all(r["buyer"] and r["merchant"] for r in d["reasons"])


def test_idempotency_same_body_replays_other_body_conflicts(client):
    _order(client)
    first = _refund(client, "k1", amount=3000)
    again = _refund(client, "k1", amount=3000)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = _refund(client, "k1", amount=3001)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert other.json()["error"]["field"] == "Idempotency-Key"
    missing = client.post(
        "/v1/refund-requests",
        json={"order_id": "o1", "reason": "quality", "requested_amount_minor": 1},
    )
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "Idempotency-Key"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ("{not json", 400, None),
        ("null", 422, None),
        ("[]", 422, None),
        ('{"order_id": 5, "reason": "quality", "requested_amount_minor": 1}', 422, "order_id"),
        (
            '{"order_id": "o1", "reason": "quality", "requested_amount_minor": "100"}',
            422,
            "requested_amount_minor",
        ),
        (
            '{"order_id": "o1", "reason": "quality", "requested_amount_minor": 10.5}',
            422,
            "requested_amount_minor",
        ),
        (
            '{"order_id": "o1", "reason": "quality", "requested_amount_minor": -1}',
            422,
            "requested_amount_minor",
        ),
        (
            '{"order_id": "o1", "reason": "quality", "requested_amount_minor": 0}',
            422,
            "requested_amount_minor",
        ),
        (
            '{"order_id": "o1", "reason": "quality", "requested_amount_minor": 1e30}',
            422,
            "requested_amount_minor",
        ),
        (
            '{"order_id": "o1", "reason": "quality", "requested_amount_minor": 10001}',
            422,
            "requested_amount_minor",
        ),
        ('{"order_id": "nope", "reason": "quality", "requested_amount_minor": 1}', 404, "order_id"),
        ('{"order_id": "o1", "requested_amount_minor": 1}', 422, "reason"),
        (
            '{"order_id": "o1", "reason": "quality", "requested_amount_minor": 1, "evidence_urls": "x"}',
            422,
            "evidence_urls",
        ),
    ],
)
def test_bad_input_is_a_4xx_with_the_error_envelope(client, body, status, field):
    _order(client)
    r = client.post(
        "/v1/refund-requests",
        content=body,
        headers={"Idempotency-Key": "bad", "Content-Type": "application/json"},
    )
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"code", "message", "field"} and err["message"]
    assert err["field"] == field


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"amount_minor": -5}, "amount_minor"),
        ({"amount_minor": 10**13}, "amount_minor"),
        ({"currency": "yuan"}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"paid_at": "yesterday"}, "paid_at"),
        ({"delivered_at": "2020-01-01T00:00:00Z"}, "delivered_at"),
        (
            {
                "coupon": {
                    "coupon_id": "c",
                    "amount_minor": -1,
                    "expires_at": "2030-01-01T00:00:00Z",
                }
            },
            "coupon.amount_minor",
        ),
        ({"buyer_id": ""}, "buyer_id"),
    ],
)
def test_bad_orders_are_refused(client, patch, field):
    r = client.post("/v1/orders", json={**order_json("o9"), **patch})
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["field"] == field


def test_changed_order_report_conflicts(client):
    _order(client)
    r = client.post("/v1/orders", json=order_json("o1", 9999))
    assert r.status_code == 409 and r.json()["error"]["field"] == "order_id"


def test_a_later_report_adds_the_delivery(client):
    _order(client, "o2", delivered=False)
    later = order_json("o2", delivered=True)
    r = client.post("/v1/orders", json=later)
    assert r.status_code == 200 and r.json()["delivered_at"] == later["delivered_at"]
    moved = {**later, "delivered_at": "2025-01-09T00:00:00Z"}
    r = client.post("/v1/orders", json=moved)
    assert r.status_code == 409 and r.json()["error"]["field"] == "delivered_at"


def test_appeal_return_received_and_unknown_ids(client):
    _order(client)
    rid = _refund(client, "k1", reason="changed_mind").json()["id"]
    r = client.post(f"/v1/refund-requests/{rid}/appeal", json={})
    assert r.status_code == 409 and "cannot appeal" in r.json()["error"]["message"]
    r = client.post(f"/v1/refund-requests/{rid}/return-received", json={"note": "ok"})
    assert r.status_code == 200 and r.json()["status"] == "refunded"
    r = client.post(f"/v1/refund-requests/{rid}/appeal", json={"note": "worn"})
    assert r.status_code == 200 and r.json()["status"] == "appealed"
    q = client.get("/v1/manual-reviews").json()
    assert [i["id"] for i in q["items"]] == [rid]
    for path in ("/v1/refund-requests/rf_x", "/v1/orders/zz/ledger"):
        assert client.get(path).status_code == 404
    assert client.post("/v1/refund-requests/rf_x/appeal", json={}).status_code == 404
    broken = client.post(
        "/v1/refund-requests/rf_x/return-received",
        content="{",
        headers={"Content-Type": "application/json"},
    )
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "malformed_json"


def test_credit_and_quality(client):
    _order(client)
    _refund(client, "k1", amount=1000)
    credit = client.get("/v1/buyers/b1/credit").json()
    assert 350 <= credit["score"] <= 950 and credit["lines"]
    quality = client.get("/v1/merchants/m1/quality").json()
    assert 0 <= quality["score"] <= 5 and quality["components"]
    assert client.get("/v1/merchants/unknown/quality").status_code == 404
    assert client.get("/v1/buyers/new-buyer/credit").status_code == 200


def test_openapi_documents_the_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "/v1/orders",
        "/v1/refund-requests",
        "/v1/refund-requests/{refund_id}",
        "/v1/refund-requests/{refund_id}/appeal",
        "/v1/refund-requests/{refund_id}/return-received",
        "/v1/orders/{order_id}/ledger",
        "/v1/buyers/{buyer_id}/credit",
        "/v1/merchants/{merchant_id}/quality",
    ):
        assert p in paths


# -- reliability under concurrency ---------------------------------------------------------


def _count(client, model, **where):
    def read(s):
        q = s.query(model)
        for k, v in where.items():
            q = q.filter(getattr(model, k) == v)
        return q.count()

    return client.store.read(read)


def test_50_concurrent_identical_requests_refund_once(client):
    _order(client)
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: _refund(client, "same-key", amount=7000), range(50)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.text for a in answers}) == 1
    assert _count(client, RefundRequest) == 1
    assert _count(client, LedgerTransfer, kind="refund") == 1
    assert _count(client, LedgerEntry) == 4  # payment + refund, two legs each
    totals = client.get("/v1/orders/o1/ledger").json()["totals"]
    assert (totals["refunded_minor"], totals["refundable_minor"]) == (7000, 3000)


def test_20_concurrent_partial_refunds_never_exceed_what_was_paid(client):
    _order(client)
    amounts = [700 + 37 * i for i in range(20)]  # sums to 21,030 > 10,000 paid
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda i: _refund(client, f"k{i}", amount=amounts[i]), range(20)))
    ok = [i for i, a in enumerate(answers) if a.status_code == 201]
    refused = [a for a in answers if a.status_code != 201]
    assert refused and ok
    for a in refused:
        assert a.status_code == 422
        assert a.json()["error"]["code"] == "exceeds_refundable"
        assert "exceeds what is refundable on order o1" in a.json()["error"]["message"]
    paid_back = sum(amounts[i] for i in ok)
    assert paid_back <= 10_000
    totals = client.get("/v1/orders/o1/ledger").json()["totals"]
    assert totals["refunded_minor"] == paid_back
    # Every refusal was right: it asked for more than was left when it ran.
    assert min(amounts[i] for i in range(20) if i not in ok) > 10_000 - paid_back
    assert client.store.read(lambda s: refund_reconcile.audit(session=s)) == []
    assert client.store.read(lambda s: ledger.check(session=s)) == []


def test_the_server_fires_due_timers_in_the_background(tmp_path):
    import time

    env = make_env()
    app = create_app(Settings(home=tmp_path), env=env, tick_seconds=0.05)
    with TestClient(app) as c:
        c.headers.update(bearer(app))  # an admin key: roles are tested in tests/auth
        c.app.state.store.transact(
            lambda s: policies.activate_policy(LIFECYCLE_POLICY, session=s, now=env.clock.now())
        )
        _order(c)
        rid = _refund(c, "k", reason="not_received").json()["id"]
        env.clock.advance(hours=48)
        for _ in range(100):
            if c.get(f"/v1/refund-requests/{rid}").json()["status"] == "refunded":
                break
            time.sleep(0.05)
        got = c.get(f"/v1/refund-requests/{rid}").json()
    assert got["status"] == "refunded"
    assert got["decision"]["reasons"][0]["code"] == "merchant_silent_48h"


_PHOTO = {"kind": "photo", "ref": "oss://claims/1.jpg", "sha256": "0f" * 32}


def test_evidence_is_kept_with_the_claim_and_the_appeal_and_decided_on(client):
    _order(client)
    r = _refund(client, "ev1", amount=4000, evidence=[_PHOTO])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["events"][0]["data"] == {"evidence": [_PHOTO]}
    stored = client.get(f"/v1/refund-requests/{body['id']}").json()
    assert stored["events"][0]["data"] == {"evidence": [_PHOTO]}
    inputs = client.store.transact(
        lambda s: repo.get_decision(s, repo.get_request(s, body["id"]).decision_id).inputs
    )
    assert (inputs["evidence_count"], inputs["has_photo"]) == (1, True)
    doc = {"kind": "document", "ref": "oss://appeals/courier.pdf", "sha256": "e3" * 32}
    a = client.post(f"/v1/refund-requests/{body['id']}/appeal", json={"evidence": [doc]})
    assert a.status_code == 200, a.text
    assert a.json()["events"][-1]["data"]["evidence"] == [doc]


@pytest.mark.parametrize(
    ("evidence", "where"),
    [
        ([{**_PHOTO, "sha256": "0f" * 31}], "sha256"),
        ([{**_PHOTO, "ref": "a\u0000b"}], "ref"),
        ([{**_PHOTO, "ref": "r" * 301}], "ref"),
        ([{**_PHOTO, "kind": "video"}], "kind"),
        ([_PHOTO] * 21, "evidence"),
    ],
)
def test_hostile_evidence_is_a_422_naming_the_field(client, evidence, where):
    _order(client)
    r = _refund(client, "ev-bad", evidence=evidence)
    assert r.status_code == 422, r.text
    assert where in r.json()["error"]["field"], r.json()


IDENTITY = {"device_id": "D17", "address_hash": "a3f9c2", "payment_fingerprint": "F-44"}


def test_orders_keep_their_optional_identity_attributes(client):
    r = client.post("/v1/orders", json={**order_json("o7"), **IDENTITY})
    assert r.status_code == 201, r.text
    assert {k: r.json()[k] for k in IDENTITY} == IDENTITY
    plain = client.post("/v1/orders", json=order_json("o8"))
    assert all(plain.json()[k] is None for k in IDENTITY)  # absent: unknown

    def stored(s):
        from tianping.refunds.models import Order

        return [(o.id, o.device_id, o.address_hash, o.payment_fingerprint)
                for o in s.query(Order).filter(Order.id.in_(["o7", "o8"])).order_by(Order.id)]  # fmt: skip

    assert client.store.transact(stored) == [
        ("o7", "D17", "a3f9c2", "F-44"),
        ("o8", None, None, None),
    ]


@pytest.mark.parametrize("field", sorted(IDENTITY))
def test_bad_identity_attributes_are_refused_by_name(client, field):
    r = client.post("/v1/orders", json={**order_json("o9"), field: "x" * 101})
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["field"] == field
