"""The after-sales rates by category and the latest replay; a decision's page and its votes."""

from __future__ import annotations

import re

import pytest
from dashboard_world import populate, seed_governance, seed_replay
from fastapi.testclient import TestClient

from refund_helpers import make_env, order_json
from tianping.api.app import create_app
from tianping.settings import Settings


@pytest.fixture
def world(store_url, tmp_path):
    app = create_app(Settings(home=tmp_path, store=store_url), env=make_env())
    with TestClient(app) as c:
        yield c, populate(app, c)


def _sign_in(client, key):
    client.cookies.clear()
    r = client.post("/dashboard/sign-in", data={"key": key}, follow_redirects=False)
    assert r.status_code == 303, r.text


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)


def _row(page: str, category: str) -> list[str]:
    row = re.search(rf'<tr data-category="{category}">(.*?)</tr>', page, re.S).group(1)
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)]


def _mark_abusive(app, refund_id: str) -> None:
    """A rejection for abnormal behaviour, as the abnormal-behaviour rule of a policy records it."""
    from tianping.refunds.models import RefundDecision

    store = app.state.store
    store.transact(lambda s: s.add(RefundDecision(
        refund_id=refund_id, source="policy", policy_name="taobao-2024-08", policy_version="v",
        inputs={"abnormal_behaviour": True}, action="reject", refund_amount_minor=0,
        requires_return=False, payer="merchant", rule_id="abnormal-behaviour",
        reasons=[{"code": "abnormal_behaviour", "buyer": "stopped", "merchant": "rejected"}],
        decided_by="policy", decided_at=store.env.clock.now())))  # fmt: skip


def test_after_sales_shows_refund_and_abuse_rates_by_category(world):
    client, w = world
    app, admin = client.app, {"Authorization": f"Bearer {w['keys']['admin']}"}
    service = {"Authorization": f"Bearer {w['keys']['service']}"}
    r = client.post("/v1/orders", json=order_json("o9", 9_000, merchant_id="m2", category="apparel"),
                    headers=service)  # fmt: skip
    assert r.status_code == 201, r.text
    _mark_abusive(app, w["refunds"]["o3"]["id"])
    got = [client.get(f"/v1/refund-requests/{w['refunds'][o]['id']}", headers=admin).json()
           for o in ("o1", "o2", "o3")]  # fmt: skip
    refunded = sum(g["refunded_amount_minor"] > 0 for g in got)
    _sign_in(client, w["keys"]["analyst"])
    page = client.get("/dashboard/after-sales").text
    assert _row(page, "food") == ["food", "3", str(refunded), f"{refunded / 3:.2%}", "3", "1",
                                  "33.33%"]  # fmt: skip
    assert _row(page, "apparel") == ["apparel", "1", "0", "0.00%", "0", "0", "—"]
    assert "No policy replay is kept in the store" in page


def test_after_sales_shows_the_latest_replay_kept_as_evidence(world):
    client, w = world
    decision_id = seed_governance(client.app)
    seed_replay(client.app, decision_id)
    _sign_in(client, w["keys"]["operator"])
    page = client.get("/dashboard/after-sales").text
    assert "Latest policy replay" in page and "No policy replay is kept" not in page
    assert f'href="/dashboard/decisions/{decision_id}"' in page
    assert "policy-replay:taobao-2024-08@2024-07-01..2024-07-31" in page
    assert "<td>812.50</td>" in page and "<td>40</td>" in page
