"""Every route in the OpenAPI spec, called with every role: who is let in and who is not."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from auth_helpers import make_key
from refund_helpers import make_env, order_json
from tianping.server.app import create_app
from tianping.settings import Settings

A, O, N, M, S = "admin", "operator", "analyst", "merchant", "service"  # noqa: E741
STAFF = {A, O, N}
#: (method, path) -> the roles admitted. Merchants are admitted only to their own data.
MATRIX = {
    ("POST", "/v1/orders"): {A, S},
    ("GET", "/v1/orders/{order_id}/ledger"): {A, O, S, M},
    ("POST", "/v1/refund-requests"): {A, S},
    ("GET", "/v1/refund-requests/{refund_id}"): {A, O, S, M},
    ("POST", "/v1/refund-requests/{refund_id}/appeal"): {A, S, M},
    ("POST", "/v1/refund-requests/{refund_id}/merchant-response"): {A, S, M},
    ("POST", "/v1/refund-requests/{refund_id}/return-shipped"): {A, S},
    ("POST", "/v1/refund-requests/{refund_id}/return-received"): {A, S, M},
    ("GET", "/v1/manual-reviews"): {A, O},
    ("POST", "/v1/manual-reviews/{refund_id}/decide"): {A, O},
    ("GET", "/v1/buyers/{buyer_id}/credit"): {A, O, S},
    ("GET", "/v1/merchants/{merchant_id}/quality"): {A, O, N, S, M},
    ("GET", "/v1/protection-fund"): STAFF,
    ("POST", "/v1/coupons"): {A, O, S},
    ("GET", "/v1/coupons/{coupon_id}"): {A, O, S},
    ("GET", "/v1/buyers/{buyer_id}/coupons"): {A, O, S},
    ("POST", "/v1/decisions"): STAFF,
    ("GET", "/v1/decisions"): STAFF,
    ("GET", "/v1/decisions/{decision_id}"): STAFF,
    ("GET", "/v1/decisions/{decision_id}/evidence/{position}"): STAFF,
    ("POST", "/v1/decisions/{decision_id}/approve"): {A, O},
    ("POST", "/v1/decisions/{decision_id}/reject"): {A, O},
    ("GET", "/v1/governance/rules"): STAFF,
    ("PUT", "/v1/governance/rules"): {A},
    ("GET", "/v1/audit"): {A, O},
    ("GET", "/v1/audit/verify"): {A, O},
    ("GET", "/v1/assignments"): {A, O, S},
    ("POST", "/v1/exposures"): {A, S},
    ("GET", "/v1/me"): {A, O, N, M, S},
}
QUERY = {"/v1/assignments": {"unit_id": "u1"}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    app = create_app(Settings(home=tmp_path_factory.mktemp("matrix")), env=make_env())
    with TestClient(app) as c:
        admin = {"Authorization": f"Bearer {make_key(app, A)}"}
        assert c.post("/v1/orders", json=order_json("o1"), headers=admin).status_code == 201
        body = {"order_id": "o1", "reason": "quality", "requested_amount_minor": 100}
        r = c.post("/v1/refund-requests", json=body, headers={**admin, "Idempotency-Key": "k1"})
        assert r.status_code == 201, r.text
        params = {"order_id": "o1", "refund_id": r.json()["id"], "merchant_id": "m1",
                  "buyer_id": "b1", "coupon_id": "c1", "decision_id": "1", "position": "1"}  # fmt: skip
        keys = {role: make_key(app, role, merchant_id="m1" if role == M else None) for role in MATRIX[("GET", "/v1/me")]}  # fmt: skip
        keys["other merchant"] = make_key(app, M, merchant_id="m2")
        yield c, params, keys


def _routes(client) -> list[tuple[str, str, dict]]:
    spec = client.get("/openapi.json").json()
    return [(m.upper(), path, op) for path, ops in spec["paths"].items() for m, op in ops.items()]


def _call(client, method, path, params, key):
    url = re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], path)
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    body = {} if method in ("POST", "PUT") else None
    return client.request(method, url, json=body, headers=headers, params=QUERY.get(path))


def test_every_route_states_its_roles_in_the_spec(world):
    client, _, _ = world
    routes = _routes(client)
    assert {(m, p) for m, p, _ in routes} == set(MATRIX)
    for method, path, op in routes:
        assert set(op["x-roles"]) == MATRIX[(method, path)], (method, path)
        assert op["security"] == [{"HTTPBearer": []}], (method, path)


def test_the_role_matrix(world):
    client, params, keys = world
    for method, path, op in _routes(client):
        where = f"{method} {path}"
        for key in (None, "tp_0000abcd_" + "x" * 43, "not a key"):
            r = _call(client, method, path, params, key)
            assert r.status_code == 401, (where, key, r.text)
            assert r.json()["error"]["code"] == "unauthorized"
        for role, key in keys.items():
            r = _call(client, method, path, params, key)
            allowed = MATRIX[(method, path)]
            if role == "other merchant" and op.get("x-owner") != "self":
                expected = "denied" if M not in allowed else "hidden"
            elif role == "other merchant":
                expected = "allowed"
            else:
                expected = "allowed" if role in allowed else "denied"
            if expected == "denied":
                assert r.status_code == 403, (where, role, r.text)
                assert r.json()["error"]["code"] == "wrong_role"
            elif expected == "hidden":  # another merchant's data is as if it did not exist
                assert r.status_code == 404, (where, role, r.text)
            else:
                assert r.status_code not in (401, 403), (where, role, r.text)
                if role in (M, "other merchant"):
                    assert r.status_code != 404, (where, role, r.text)


def test_a_revoked_key_is_refused_at_once(world):
    client, _, _ = world
    key = make_key(client.app, O, name="leaver")
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/me", headers=headers).json()["name"] == "leaver"
    from datetime import UTC, datetime

    from tianping.auth import service

    store = client.app.state.store
    store.transact(lambda s: service.revoke(key.split("_")[1], session=s, now=datetime.now(UTC)))
    r = client.get("/v1/me", headers=headers)
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
