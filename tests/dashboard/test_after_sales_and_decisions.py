"""The after-sales rates by category and the latest replay; a decision's page and its votes."""

from __future__ import annotations

import re

import pytest
from dashboard_world import populate, seed_governance, seed_replay
from fastapi.testclient import TestClient

from refund_helpers import make_env, order_json
from tianping.server.app import create_app
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
    assert refunded > 0  # so the rate shown is not trivially zero
    _sign_in(client, w["keys"]["analyst"])
    page = client.get("/dashboard/after-sales").text
    assert _row(page, "food") == ["food", "3", str(refunded), f"{refunded / 3:.2%}", "3", "1",
                                  "33.33%"]  # fmt: skip
    assert _row(page, "apparel") == ["apparel", "1", "0", "0.00%", "0", "0", "—"]
    assert "No policy replay is kept in the store" in page
    # the empty-parcel request waits for a person, and the page says which rule sent it there
    assert (
        "Why it is here: test (policy lifecycle-test" in page and "rule rule-empty_parcel)" in page
    )


def test_after_sales_shows_the_latest_replay_kept_as_evidence(world):
    client, w = world
    decision_id = seed_governance(client.app)
    seed_replay(client.app, decision_id)
    _sign_in(client, w["keys"]["operator"])
    page = client.get("/dashboard/after-sales").text
    assert "Latest policy replay" in page and "No policy replay is kept" not in page
    assert f'href="/dashboard/decisions/{decision_id}"' in page
    assert "policy-replay:taobao-2024-08@2024-07-01..2024-07-31" in page
    assert "<td>¥812.50</td>" in page and "<td>40</td>" in page  # money as money, in yuan
    assert '<th scope="col">Requests</th>' in page  # keys as words


def _vote(client, decision_id, choice, page, comment=""):
    return client.post(f"/dashboard/decisions/{decision_id}/vote",
                       data={"choice": choice, "csrf": _csrf(page), "comment": comment},
                       follow_redirects=False)  # fmt: skip


def test_a_decision_page_shows_evidence_votes_and_history(world):
    client, w = world
    decision_id = seed_governance(client.app)
    _sign_in(client, w["keys"]["analyst"])
    assert f'href="/dashboard/decisions/{decision_id}"' in client.get("/dashboard/decisions").text
    page = client.get(f"/dashboard/decisions/{decision_id}").text
    admin = {"Authorization": f"Bearer {w['keys']['admin']}"}
    api = client.get(f"/v1/decisions/{decision_id}", headers=admin).json()
    assert api["evidence"] and all(e["sha256"] in page for e in api["evidence"])
    assert "decision.proposed" in page and "Door-delivery pilot" in page and "0/2" in page
    assert 'action="/dashboard/decisions/' not in page  # an analyst reads, does not vote
    assert client.get("/dashboard/decisions/999").status_code == 404


def test_votes_go_through_the_service_as_the_signed_in_holder(world):
    client, w = world
    decision_id = seed_governance(client.app)  # proposed by Ana; approvers Ada, Oli, Bo; 2 needed
    url = f"/dashboard/decisions/{decision_id}"
    _sign_in(client, w["keys"]["operator"])  # Oli
    page = client.get(url).text
    r = client.post(f"{url}/vote", data={"choice": "approve", "csrf": "0" * 64})
    assert r.status_code == 403 and "stale or forged" in r.text
    r = _vote(client, decision_id, "approve", page, "numbers hold")
    assert r.status_code == 303 and r.headers["location"] == f"{url}?voted=approve"
    page = client.get(r.headers["location"]).text
    assert "Your approve vote was recorded" in page and "1/2" in page and "numbers hold" in page
    r = _vote(client, decision_id, "approve", page)  # Oli again: the service refuses
    assert r.status_code == 409 and "Vote not recorded" in r.text and "already" in r.text
    _sign_in(client, w["keys"]["admin"])  # Ada: the second approval
    r = _vote(client, decision_id, "approve", client.get(url).text)
    assert r.status_code == 303
    admin = {"Authorization": f"Bearer {w['keys']['admin']}"}
    api = client.get(f"/v1/decisions/{decision_id}", headers=admin).json()
    assert api["status"] == "approved" and [v["voter"] for v in api["votes"]] == ["Oli", "Ada"]
    assert all(v["key_id"] for v in api["votes"])
    page = client.get(url).text
    assert "approved" in page and 'action="/dashboard/decisions/' not in page  # decided: no form


def test_the_proposer_cannot_approve_their_own_decision_on_the_page(world):
    client, w = world
    seed_governance(client.app)
    from tianping.governance import service

    store = client.app.state.store
    own = store.transact(lambda s: service.propose(
        service.Proposal("Oli's own spend", "spend", {"amount_minor": 1_000, "currency": "CNY",
                                                       "purpose": "tea"}),
        session=s, actor="Oli").id)  # fmt: skip
    _sign_in(client, w["keys"]["operator"])
    r = _vote(client, own, "approve", client.get(f"/dashboard/decisions/{own}").text)
    assert r.status_code == 403 and "Oli proposed this decision and cannot vote on it" in r.text
    _sign_in(client, w["keys"]["analyst"])
    r = client.post(f"/dashboard/decisions/{own}/vote", data={"choice": "approve", "csrf": "x"})
    assert r.status_code == 403


def test_the_decisions_page_proposes_with_clear_errors(world):
    client, w = world
    seed_governance(client.app)  # rules: Ada, Oli, Bo, two of three
    _sign_in(client, w["keys"]["analyst"])  # Ana
    page = client.get("/dashboard/decisions").text
    assert "Propose a decision" in page and 'name="kind"' in page
    form = {"csrf": _csrf(page), "title": "Red packets for 618", "kind": "spend",
            "amount": "", "currency": "CNY", "purpose": "618 campaign"}  # fmt: skip
    r = client.post("/dashboard/decisions", data=form, follow_redirects=False)
    assert r.status_code == 422 and "Not proposed: a spend request needs an amount" in r.text
    assert 'value="Red packets for 618"' in r.text  # what was typed is kept
    r = client.post("/dashboard/decisions", data={**form, "amount": "12.345"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 422 and "amount" in r.text
    r = client.post("/dashboard/decisions", data={**form, "kind": "ship_experiment",
                    "experiment": "nope", "variant": "x"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 404 and "no experiment named &#39;nope&#39;" in r.text
    r = client.post("/dashboard/decisions", data={**form, "amount": "50000", "csrf": "0" * 64},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 403 and "stale or forged" in r.text
    r = client.post("/dashboard/decisions", data={**form, "amount": "50000"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303, r.text
    number = int(r.headers["location"].rsplit("=", 1)[1])
    listed = client.get(r.headers["location"]).text
    assert f"Decision #{number} proposed." in listed
    assert f'<a href="/dashboard/decisions/{number}">Red packets for 618</a>' in listed
    admin = {"Authorization": f"Bearer {w['keys']['admin']}"}
    d = client.get(f"/v1/decisions/{number}", headers=admin).json()
    assert (d["proposer"], d["amount_minor"], d["status"]) == ("Ana", 5_000_000, "pending")
    assert d["proposer_key_id"] == client.get("/v1/me", headers={
        "Authorization": f"Bearer {w['keys']['analyst']}"}).json()["key_id"]  # fmt: skip
