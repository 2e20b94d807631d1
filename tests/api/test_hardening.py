"""Each defect the hardening review found, as a regression test on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from auth_helpers import make_key
from refund_helpers import make_env, order_json
from tianping.server.app import create_app
from tianping.settings import Settings
from tianping.store import init_schema, make_engine

RULES = {"rules": {"default": {"approvers": ["ann", "bob", "cat"], "required": 2}}}


@pytest.fixture
def api(store_url, tmp_path):
    app = create_app(Settings(home=tmp_path, store=store_url), env=make_env())
    with TestClient(app, raise_server_exceptions=False) as c:
        keys = {name: make_key(app, "admin", name=name) for name in ("ann", "bob", "dan")}
        c.headers.update({"Authorization": f"Bearer {keys['dan']}"})
        assert c.put("/v1/governance/rules", json=RULES).status_code == 200
        assert c.post("/v1/orders", json=order_json("o1", 10**6)).status_code == 201
        yield c, keys


def _raw(c, method, url, body, headers=None):
    return c.request(method, url, content=json.dumps(body, allow_nan=True),
                     headers={"Content-Type": "application/json", **(headers or {})})  # fmt: skip


def _error(r, status: int, code: str = "invalid_input") -> dict:
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    return r.json()["error"]


def test_a_nul_in_any_string_is_a_422_naming_the_field(api):
    c, _ = api
    for field in ("order_id", "buyer_id", "merchant_id", "category"):
        e = _error(c.post("/v1/orders", json={**order_json("o9"), field: "a\x00b"}), 422)
        assert e["field"] == field and "U+0000" in e["message"]
    body = {"order_id": "o1", "reason": "qual\x00ity", "requested_amount_minor": 1}
    e = _error(c.post("/v1/refund-requests", json=body, headers={"Idempotency-Key": "k"}), 422)
    assert e["field"] == "reason"
    coupon = {"coupon_id": "c\x00", "buyer_id": "b1", "amount_minor": 1, "currency": "CNY",
              "expires_at": "2026-01-01T00:00:00Z"}  # fmt: skip
    assert _error(c.post("/v1/coupons", json=coupon), 422)["field"] == "coupon_id"
    assert _error(c.get("/v1/audit?actor=%00"), 422)["field"] == "actor"
    assert _error(c.get("/v1/refund-requests/a%00b"), 422)["field"] == "refund_id"


@pytest.mark.parametrize("amount", [2**63, 10**30, 10**14 + 1])
def test_a_spend_beyond_the_bound_is_a_422(api, amount):
    c, _ = api
    body = {"title": "t", "kind": "spend",
            "payload": {"amount_minor": amount, "currency": "CNY", "purpose": "p"}}  # fmt: skip
    assert _error(c.post("/v1/decisions", json=body), 422)["field"].endswith("amount_minor")


@pytest.mark.parametrize("target", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_goal_target_is_a_422_and_nothing_is_proposed(api, target):
    c, _ = api
    body = {"title": "t", "kind": "goal_change",
            "payload": {"goal": "dac", "metric": "dac", "target": target,
                        "deadline": "2030-01-01", "reason": "r"}}  # fmt: skip
    assert _error(_raw(c, "POST", "/v1/decisions", body), 422)["field"].endswith("target")
    assert c.get("/v1/decisions").json() == []


def test_evidence_nested_500_deep_is_a_422_not_a_recursion_error(api):
    c, _ = api
    deep: object = 1
    for _ in range(500):
        deep = [deep]
    body = {"title": "t", "kind": "spend", "documents": [{"name": "d", "data": deep}],
            "payload": {"amount_minor": 1, "currency": "CNY", "purpose": "p"}}  # fmt: skip
    assert "nested deeper" in _error(c.post("/v1/decisions", json=body), 422)["message"]


def test_coupons_take_iso_currencies_and_honour_idempotency_keys(api):
    c, _ = api
    coupon = {"coupon_id": "c1", "buyer_id": "b1", "amount_minor": 100, "currency": "CNY",
              "expires_at": "2026-01-01T00:00:00Z"}  # fmt: skip
    for code in ("ZZZ", "XAU", "cny"):
        assert _error(c.post("/v1/coupons", json={**coupon, "currency": code}), 422)
    first = c.post("/v1/coupons", json=coupon, headers={"Idempotency-Key": "p1"})
    again = c.post("/v1/coupons", json=coupon, headers={"Idempotency-Key": "p1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = c.post("/v1/coupons", json={**coupon, "coupon_id": "c2"},
                   headers={"Idempotency-Key": "p1"})  # fmt: skip
    _error(other, 409, "idempotency_key_reused")
    assert c.get("/v1/coupons/c2").status_code == 404  # no second packet


def test_idempotency_records_belong_to_the_caller(api):
    c, keys = api
    body = {"order_id": "o1", "reason": "quality", "requested_amount_minor": 100}

    def post(who, payload):
        return c.post("/v1/refund-requests", json=payload, headers={
            "Idempotency-Key": "shared", "Authorization": f"Bearer {keys[who]}"})  # fmt: skip

    ann = post("ann", body)
    assert ann.status_code == 201
    bob = post("bob", body)  # the same key from another caller is another request
    assert bob.status_code == 201 and bob.json()["id"] != ann.json()["id"]
    assert "Idempotent-Replayed" not in bob.headers
    assert post("bob", {**body, "requested_amount_minor": 7}).status_code == 409  # bob's own
    assert post("ann", body).json() == ann.json()


def test_orders_of_nothing_or_out_of_the_window_are_refused(api):
    c, _ = api
    assert _error(c.post("/v1/orders", json={**order_json("z", 1), "amount_minor": 0}), 422)
    with_packet = order_json("z2", 0, coupon={"coupon_id": "cz", "amount_minor": 500,
                                             "expires_at": "2026-01-01T00:00:00Z"})  # fmt: skip
    assert c.post("/v1/orders", json=with_packet).status_code == 201  # a packet paid it all
    far = {**order_json("z3"), "paid_at": "9999-01-01T00:00:00Z", "delivered_at": None}
    assert _error(c.post("/v1/orders", json=far), 422, "out_of_window")["field"] == "paid_at"
    soon = {**order_json("z4"), "paid_at": "2030-01-01T00:00:00Z", "delivered_at": None}
    assert _error(c.post("/v1/orders", json=soon), 422, "in_the_future")["field"] == "paid_at"


def test_the_reviewer_is_the_keys_holder_never_a_body_field(api):
    c, keys = api
    body = {"order_id": "o1", "reason": "changed_mind", "requested_amount_minor": 900_000}
    r = c.post("/v1/refund-requests", json=body, headers={"Idempotency-Key": "big"})
    refund = r.json()
    if refund["status"] == "negotiating":  # the merchant refuses: a reviewer decides
        r = c.post(f"/v1/refund-requests/{refund['id']}/merchant-response", json={"accept": False})
        refund = r.json()
    assert refund["status"] == "manual_review", refund
    url = f"/v1/manual-reviews/{refund['id']}/decide"
    forged = {"action": "reject", "reviewer": "someone-else"}
    assert _error(c.post(url, json=forged), 422)["field"] == "reviewer"
    done = c.post(
        url, json={"action": "reject"}, headers={"Authorization": f"Bearer {keys['bob']}"}
    )
    assert done.status_code == 200, done.text
    assert done.json()["events"][-1]["actor"] == "reviewer:bob"


def test_the_api_never_reads_a_policy_file_for_a_caller(api, tmp_path):
    c, _ = api
    secret = tmp_path / "secret.yaml"
    secret.write_text("name: leaked\n")
    body = {"title": "t", "kind": "refund_policy", "payload": {"policy": str(secret)}}
    e = _error(c.post("/v1/decisions", json=body), 404, "not_found")
    assert "leaked" not in e["message"]


def test_the_openapi_document_says_what_the_server_does(api):
    c, _ = api
    doc = c.get("/openapi.json").json()
    create = doc["paths"]["/v1/refund-requests"]["post"]
    key = next(p for p in create["parameters"] if p["name"] == "Idempotency-Key")
    assert key["required"] is True
    for op in (create, doc["paths"]["/v1/coupons"]["post"]):
        assert {"400", "401", "403", "404", "409", "413", "422"} <= set(op["responses"])
    assert doc["paths"]["/v1/orders/{order_id}/ledger"]["get"]["responses"].keys() >= {
        "401", "403", "404", "422"}  # fmt: skip
    currency = doc["components"]["schemas"]["CouponIssueIn"]["properties"]["currency"]
    assert "CNY" in currency["enum"] and "ZZZ" not in currency["enum"]
    assert "XAU" not in currency["enum"]
    kinds = {ref.split("/")[-1] for ref in re.findall(r'"#/components/schemas/(\w+Proposal)"',
                                                      json.dumps(doc))}  # fmt: skip
    assert kinds == {"SpendProposal", "PolicyProposal", "GoalProposal", "ExperimentProposal",
                     "RaceProposal"}  # fmt: skip


def test_sqlite_commits_are_durable(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 's.sqlite'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


@pytest.mark.postgres
def test_a_unix_socket_postgresql_url_migrates(pg_cluster):
    pg_cluster.create_database("socket")
    url = (f"postgresql+psycopg://postgres@/socket?host={quote(str(pg_cluster.dir), safe='')}"
           f"&port={pg_cluster.port}")  # fmt: skip
    assert "%2F" in url
    engine = make_engine(url)
    init_schema(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM api_keys")).scalar() == 0
    engine.dispose()


def test_the_dashboard_propose_form_refuses_an_infinite_target(api):
    c, keys = api
    c.cookies.clear()
    r = c.post("/dashboard/sign-in", data={"key": keys["dan"]}, follow_redirects=False)
    assert r.status_code == 303
    page = c.get("/dashboard/decisions").text
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)
    for target in ("1e999999", "nan", "-inf"):
        form = {
            "csrf": csrf,
            "kind": "goal_change",
            "title": "t",
            "goal": "dac",
            "metric": "dac",
            "target": target,
            "deadline": "2030-01-01",
            "reason": "r",
        }
        r = c.post("/dashboard/decisions", data=form, follow_redirects=False)
        assert r.status_code == 422 and "finite number" in r.text, r.text[:300]
    form = {"csrf": csrf, "kind": "spend", "title": "a\x00b", "amount": "1e999999999999",
            "purpose": "p"}  # fmt: skip
    assert c.post("/dashboard/decisions", data=form, follow_redirects=False).status_code == 422


FORM_HOSTILE = ["\x00", "a\x00b", "\ud800", "1e999999", "nan", "-inf", "x" * 3000, "\r\nX: y",
                "9999-12-31", "ZZZ", "", "//evil.example/"]  # fmt: skip


def _form(c, url: str, data: dict):
    """POST a form whose values may hold lone surrogates (sent as their UTF-8 bytes, which are
    not valid UTF-8: what a hostile client can send)."""
    body = "&".join(f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'))}"
                    for k, v in data.items())  # fmt: skip
    return c.post(url, content=body, follow_redirects=False,
                  headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip


def test_no_dashboard_form_answers_a_5xx(api):
    c, keys = api
    c.cookies.clear()
    for value in FORM_HOSTILE:  # the sign-in form, before any session
        r = _form(c, "/dashboard/sign-in", {"key": value, "next": value})
        assert r.status_code < 500 and "\r" not in r.headers.get("location", "")
    assert c.post("/dashboard/sign-in", data={"key": keys["dan"], "next": "/dashboard/\r\nX: y"},
                  follow_redirects=False).headers["location"] == "/dashboard/"  # fmt: skip
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"',
                     c.get("/dashboard/decisions").text).group(1)  # fmt: skip
    fields = ("title", "amount", "currency", "purpose", "policy", "goal", "metric", "target",
              "deadline", "grain", "reason", "experiment", "race", "variant", "evidence")  # fmt: skip
    kinds = ("spend", "refund_policy", "goal_change", "ship_experiment", "ship_race_winner")
    for kind in kinds:
        for field in fields:
            for value in FORM_HOSTILE:
                form = {"csrf": csrf, "kind": kind, "title": "t", field: value}
                r = _form(c, "/dashboard/decisions", form)
                assert r.status_code < 500, (kind, field, value, r.text[:300])
    for value in FORM_HOSTILE:
        for url, form in (("/dashboard/decisions/1/vote", {"choice": value, "comment": value}),
                          ("/dashboard/decisions/1/vote", {"choice": "approve", "comment": value}),
                          ("/dashboard/after-sales/x/decide", {"action": value, "note": value})):  # fmt: skip
            r = _form(c, url, {"csrf": csrf, **form})
            assert r.status_code < 500, (url, value, r.text[:300])
        for url in ("/dashboard/merchants/{}", "/dashboard/experiments/{}", "/dashboard/races/{}"):
            segment = quote(value.encode("utf-8", "surrogatepass"), safe="")
            assert c.get(url.format(segment)).status_code < 500
