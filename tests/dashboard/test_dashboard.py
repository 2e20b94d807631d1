"""The dashboard over HTTP: sign-in into a session cookie, roles, CSRF, a merchant's own data."""

from __future__ import annotations

import re

import pytest
from dashboard_world import populate
from fastapi.testclient import TestClient

from auth_helpers import make_key
from refund_helpers import RING_POLICY, make_env, order_json
from tianping.server.app import create_app
from tianping.settings import Settings

PAGES = ("/dashboard/", "/dashboard/experiments", "/dashboard/after-sales", "/dashboard/decisions",
         "/dashboard/races",
         "/dashboard/merchants/m1")  # fmt: skip


@pytest.fixture
def world(store_url, tmp_path):
    app = create_app(Settings(home=tmp_path, store=store_url), env=make_env())
    with TestClient(app) as c:
        yield c, populate(app, c)


def _sign_in(client, key, next_="/dashboard/"):
    client.cookies.clear()
    return client.post("/dashboard/sign-in", data={"key": key, "next": next_},
                       follow_redirects=False)  # fmt: skip


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)


def test_sign_in_sets_a_strict_http_only_cookie_and_pages_need_it(world):
    client, w = world
    r = client.get("/dashboard/after-sales", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/dashboard/sign-in")
    r = _sign_in(client, "tp_00000000_" + "x" * 43)
    assert r.status_code == 401 and "unknown or revoked" in r.text
    r = _sign_in(client, w["keys"]["operator"], "/dashboard/after-sales")
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/after-sales"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/dashboard" in cookie
    assert w["keys"]["operator"] not in r.headers["set-cookie"]
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, (path, page.text)
        assert "Content-Security-Policy" in page.headers
        assert not re.search(r"(src|href)=\"(https?:)?//", page.text), path  # nothing off-site
    assert _sign_in(client, w["keys"]["operator"], "https://evil.example/").headers[
        "location"] == "/dashboard/"  # fmt: skip


def test_a_forged_cookie_or_a_revoked_key_ends_the_session(world):
    client, w = world
    _sign_in(client, w["keys"]["analyst"])
    good = client.cookies.get("tianping_session")
    client.cookies.set("tianping_session", good[:-1] + ("0" if good[-1] != "0" else "1"),
                       path="/dashboard")  # fmt: skip
    assert client.get("/dashboard/", follow_redirects=False).status_code == 303
    client.cookies.clear()
    client.cookies.set("tianping_session", good, path="/dashboard")
    assert client.get("/dashboard/decisions").status_code == 200
    key_id = w["keys"]["analyst"].split("_")[1]
    from datetime import UTC, datetime

    from tianping.auth import service

    store = client.app.state.store
    store.transact(lambda s: service.revoke(key_id, session=s, now=datetime.now(UTC)))
    assert client.get("/dashboard/decisions", follow_redirects=False).status_code == 303


def test_an_operator_approves_a_queued_refund_with_the_csrf_token(world):
    client, w = world
    queued = w["refunds"]["o1"]
    assert queued["status"] == "manual_review"
    _sign_in(client, w["keys"]["operator"])
    page = client.get("/dashboard/after-sales").text
    assert f'data-refund="{queued["id"]}"' in page
    url = f"/dashboard/after-sales/{queued['id']}/decide"
    r = client.post(url, data={"action": "refund_only", "csrf": "0" * 64}, follow_redirects=False)
    assert r.status_code == 403 and "stale or forged" in r.text
    r = client.post(url, data={"action": "refund_only", "csrf": _csrf(page), "note": "photo ok"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303, r.text
    admin = {"Authorization": f"Bearer {w['keys']['admin']}"}
    got = client.get(f"/v1/refund-requests/{queued['id']}", headers=admin).json()
    assert got["status"] == "refunded" and got["refunded_amount_minor"] == 5_000
    assert f'data-refund="{queued["id"]}"' not in client.get("/dashboard/after-sales").text


def test_an_analyst_sees_the_queue_but_cannot_decide(world):
    client, w = world
    _sign_in(client, w["keys"]["analyst"])
    page = client.get("/dashboard/after-sales").text
    assert "Manual review queue (1)" in page and "/decide" not in page
    assert "lifecycle-test" in page and "(in force)" in page  # the policy history
    _sign_in(client, w["keys"]["operator"])
    csrf = _csrf(client.get("/dashboard/after-sales").text)
    _sign_in(client, w["keys"]["analyst"])
    rid = w["refunds"]["o1"]["id"]
    r = client.post(f"/dashboard/after-sales/{rid}/decide", data={"action": "reject", "csrf": csrf})
    assert r.status_code == 403  # another session's token does not fit this one


def test_a_merchant_sees_only_its_own_shop(world):
    client, w = world
    r = _sign_in(client, w["keys"]["m1"])
    assert r.headers["location"] == "/dashboard/merchants/m1"
    page = client.get("/dashboard/merchants/m1").text
    assert w["refunds"]["o1"]["id"] in page and w["refunds"]["o2"]["id"] in page
    assert w["refunds"]["o3"]["id"] not in page
    assert client.get("/dashboard/merchants/m2").status_code == 404
    for path in ("/dashboard/after-sales", "/dashboard/decisions", "/dashboard/experiments"):
        assert client.get(path).status_code == 403, path
    assert client.get("/dashboard/", follow_redirects=False).headers["location"] == (
        "/dashboard/merchants/m1"
    )
    r = _sign_in(client, w["keys"]["service"])
    assert client.get("/dashboard/after-sales").status_code == 403


def test_assets_come_from_the_package(world):
    client, _ = world
    css = client.get("/dashboard/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get("/dashboard/static/../../settings.py").status_code == 404
    assert client.get("/dashboard/static/app.js").status_code == 404


def test_forms_posted_from_another_site_are_refused(world):
    client, w = world
    r = client.post("/dashboard/sign-in", data={"key": w["keys"]["admin"]},
                    headers={"Origin": "https://evil.example"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 403 and "session" not in r.headers.get("set-cookie", "")
    _sign_in(client, w["keys"]["operator"])
    page = client.get("/dashboard/after-sales").text
    rid = w["refunds"]["o1"]["id"]
    r = client.post(f"/dashboard/after-sales/{rid}/decide", data={"action": "reject", "csrf": _csrf(page)},
                    headers={"Origin": "https://evil.example"}, follow_redirects=False)  # fmt: skip
    assert (
        r.status_code == 403 and f'data-refund="{rid}"' in client.get("/dashboard/after-sales").text
    )


def test_the_overview_shows_goals_with_their_revisions_without_event_data(world):
    client, w = world
    _sign_in(client, w["keys"]["analyst"])
    page = client.get("/dashboard/").text
    assert "No event data in the warehouse yet" in page
    assert "Revision history of gmv-2026" in page
    assert page.index("first plan") < page.index("618 came in strong")
    assert "GMV (per month) to 1,200,000 by 2026-12-31" in page


def test_the_reviewer_sees_the_shared_values_of_a_ring(store_url, tmp_path):
    """A claim sent to a person because the buyer's ring claimed in a burst: the review queue
    names the device and card that link the accounts."""
    from tianping.refunds import policies

    app = create_app(Settings(home=tmp_path, store=store_url), env=make_env())
    with TestClient(app) as client:
        store = app.state.store
        store.transact(lambda s: policies.activate_policy(
            RING_POLICY, session=s, now=store.env.clock.now()))  # fmt: skip
        service = {"Authorization": f"Bearer {make_key(app, 'service')}"}
        identity = {"b1": {"device_id": "D1"}, "b2": {"device_id": "D1", "payment_fingerprint": "F1"},
                    "b3": {"payment_fingerprint": "F1"}}  # fmt: skip
        for buyer, ids in identity.items():
            order = {**order_json(f"o-{buyer}", 20_000, buyer_id=buyer), **ids}
            assert client.post("/v1/orders", json=order, headers=service).status_code == 201
        for buyer in identity:
            body = {"order_id": f"o-{buyer}", "reason": "quality", "requested_amount_minor": 5_000}
            r = client.post("/v1/refund-requests", json=body,
                            headers={**service, "Idempotency-Key": buyer})  # fmt: skip
            assert r.status_code == 201, r.text
        assert r.json()["status"] == "manual_review"
        _sign_in(client, make_key(app, "operator", name="Oli"), "/dashboard/after-sales")
        page = client.get("/dashboard/after-sales").text
        assert "Manual review queue (1)" in page
        assert "shares device D1 and card F1 with 2 other accounts" in page, page
