"""Whatever a client sends, the API answers with a 2xx or a 4xx error envelope, never a 500."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth_helpers import bearer
from refund_helpers import make_env, order_json
from tianping.server.app import create_app
from tianping.settings import Settings

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = {
    "order_id": st.sampled_from(["o1", "", "nope", " o1 "]) | SCALARS,
    "reason": st.sampled_from(["quality", "changed_mind", ""]) | SCALARS,
    "requested_amount_minor": st.integers(-(10**15), 10**15) | SCALARS,
    "evidence_urls": st.lists(st.text(max_size=5), max_size=3) | SCALARS,
}
BODIES = st.fixed_dictionaries({}, optional=FIELDS) | JSON


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz")
    app = create_app(Settings(home=home), env=make_env())
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers.update(bearer(app))  # an admin key: roles are tested in tests/auth
        assert c.post("/v1/orders", json=order_json("o1", 10**9)).status_code == 201
        yield c


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=BODIES,
    raw=st.booleans(),
    key=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=10),
)
def test_refund_requests_never_500(client, body, raw, key):
    content = json.dumps(body, allow_nan=True)
    if raw:
        content = content[: len(content) // 2]  # truncated JSON
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    r = client.post("/v1/refund-requests", content=content, headers=headers)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert set(r.json()["error"]) == {"code", "message", "field"}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(patch=st.dictionaries(st.sampled_from(list(order_json())), JSON, max_size=3))
def test_orders_never_500(client, patch):
    r = client.post(
        "/v1/orders",
        content=json.dumps({**order_json("o2"), **patch}, allow_nan=True),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code < 500, r.text
