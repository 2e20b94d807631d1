"""The decision and audit commands, and the governance API, end to end."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from governance_data import RULES, drop_append_only
from sqlalchemy import text
from typer.testing import CliRunner

from auth_helpers import make_key
from tianping.cli.main import app as cli
from tianping.server.app import create_app
from tianping.settings import Settings
from tianping.store import init_schema, make_engine

runner = CliRunner()


@pytest.fixture
def home(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    init_schema(eng)
    eng.dispose()
    (tmp_path / "rules.json").write_text(json.dumps(RULES))
    return tmp_path


def _run(home, *args: str):
    return runner.invoke(cli, ["--home", str(home), *args])


def test_cli_propose_vote_show_list_and_audit(home):
    r = _run(home, "decision", "rules", "set", str(home / "rules.json"), "--actor", "admin")
    assert r.exit_code == 0 and "in force" in r.output
    (home / "plan.json").write_text('{"weeks": 6}')
    r = _run(home, "decision", "propose", "--title", "Pilot", "--kind", "spend", "--amount",
             "800000.00", "--purpose", "door delivery", "--attach", f"plan={home / 'plan.json'}",
             "--actor", "dan")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "decision #1 proposed: needs 2 of ana, bo, chen" in r.output

    r = _run(home, "decision", "approve", "1", "--actor", "dan")
    assert (
        r.exit_code == 1
        and r.output.strip() == "error: dan proposed this decision and cannot vote on it"
    )
    assert (
        _run(home, "decision", "approve", "1", "--actor", "ana", "--key-id", "k-ana").exit_code == 0
    )
    r = _run(home, "decision", "approve", "1", "--actor", "bo", "--comment", "within budget")
    assert r.exit_code == 0 and "decision #1 approved: 2 of 3 approved" in r.output

    shown = json.loads(_run(home, "decision", "show", "1", "--format", "json").output)
    assert shown["status"] == "approved" and shown["amount_minor"] == 80_000_000
    assert [v["voter"] for v in shown["votes"]] == ["ana", "bo"]
    assert shown["evidence"][0]["ref"] == "document:plan" and shown["evidence"][0]["intact"]
    assert _run(home, "decision", "show", "1", "--evidence", "1").output.strip() == '{"weeks":6}'
    listed = json.loads(_run(home, "decision", "list", "--format", "json").output)
    assert [(d["id"], d["status"], d["approvals"]) for d in listed] == [(1, "approved", "2/2")]

    rows = json.loads(_run(home, "audit", "--actor", "ana", "--format", "json").output)
    assert [(e["action"], e["key_id"]) for e in rows] == [("decision.voted", "k-ana")]
    r = _run(home, "audit", "--verify")
    assert r.exit_code == 0 and "audit log intact: 6 entries" in r.output


def test_cli_verify_fails_on_an_edited_row_and_errors_are_one_line(home):
    _run(home, "decision", "rules", "set", str(home / "rules.json"), "--actor", "admin")
    r = _run(home, "decision", "propose", "--title", "Big", "--kind", "spend", "--amount",
             "2000000", "--purpose", "warehouse", "--actor", "dan")  # fmt: skip
    assert r.exit_code == 0 and "decision #1 rejected: above the spend cap" in r.output
    eng = make_engine(f"sqlite:///{home / 'store.sqlite'}")
    with eng.begin() as conn:
        drop_append_only(conn)  # the database refuses edits to whoever cannot change its DDL
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    eng.dispose()
    r = _run(home, "audit", "--verify")
    assert r.exit_code == 1 and "entry 2: content does not match its hash (edited)" in r.output
    for args, message in [
        (("decision", "show", "7"), "error: no decision #7"),
        (
            ("decision", "propose", "--title", "x", "--kind", "launch", "--actor", "dan"),
            "unknown decision kind",
        ),
        (
            ("decision", "propose", "--title", "x", "--kind", "spend", "--actor", "dan"),
            "needs --amount",
        ),
        (("audit", "--since", "yesterday"), "--since 'yesterday' is not an ISO 8601 time"),
    ]:
        r = _run(home, *args)
        assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output


@pytest.fixture
def client(store_url, tmp_path):
    app = create_app(Settings(home=tmp_path, store=store_url))  # mounts the governance router
    with TestClient(app) as c:
        # One key per person: who acts is the key's holder, as the audit log records it.
        c.keys = {n: make_key(app, "admin" if n == "admin" else "operator", name=n)
                  for n in ("admin", "dan", "ana", "bo", "chen")}  # fmt: skip
        c.headers.update(_as_key(c.keys["admin"]))
        yield c


def _as_key(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_api_decisions_votes_evidence_and_audit(client):
    assert (
        client.put(
            "/v1/governance/rules", json={"rules": RULES}, headers=_as_key(client.keys["admin"])
        ).status_code
        == 200
    )
    body = {"title": "Pilot", "kind": "spend", "payload": {"amount_minor": 5_000_000, "currency": "CNY",
            "purpose": "door delivery"}, "documents": [{"name": "plan", "data": {"weeks": 6}}]}  # fmt: skip
    r = client.post("/v1/decisions", json=body, headers=_as_key(client.keys["dan"]))
    assert r.status_code == 201, r.text
    d = r.json()
    assert (d["status"], d["proposer_key_id"], d["approvers"]) == (
        "pending",
        client.keys["dan"].split("_")[1],
        ["ana", "bo", "chen"],
    )
    ev = client.get(f"/v1/decisions/{d['id']}/evidence/1")
    assert (
        ev.content == b'{"weeks":6}'
        and ev.headers["X-Content-SHA256"] == d["evidence"][0]["sha256"]
    )

    r = client.post(
        f"/v1/decisions/{d['id']}/approve", json={}, headers=_as_key(client.keys["dan"])
    )
    assert r.status_code == 403 and r.json()["error"]["field"] == "actor"
    assert (
        client.post(
            f"/v1/decisions/{d['id']}/approve", json={}, headers=_as_key(client.keys["ana"])
        ).status_code
        == 200
    )
    r = client.post(
        f"/v1/decisions/{d['id']}/reject", json={"veto": True}, headers=_as_key(client.keys["bo"])
    )
    assert r.status_code == 422 and "no veto" in r.json()["error"]["message"]
    r = client.post(
        f"/v1/decisions/{d['id']}/approve",
        json={"comment": "ok"},
        headers=_as_key(client.keys["chen"]),
    )
    assert r.json()["status"] == "approved"
    r = client.post(f"/v1/decisions/{d['id']}/reject", json={}, headers=_as_key(client.keys["bo"]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "decision_closed"
    assert (
        client.post("/v1/decisions/1/approve", json={}, headers={"Authorization": ""}).status_code
        == 401
    )  # no key, no actor

    assert [x["status"] for x in client.get("/v1/decisions", params={"kind": "spend"}).json()] == [
        "approved"
    ]
    entries = client.get(
        "/v1/audit", params={"subject": f"decision:{d['id']}", "action": "decision.v"}
    ).json()
    assert [e["actor"] for e in entries] == ["ana", "chen"]
    v = client.get("/v1/audit/verify").json()
    # the five keys' creation, then six governance changes
    assert v["ok"] and v["entries"] == 11 and len(v["head"]) == 64


def test_api_warehouse_evidence_is_refused_with_a_reason(client):
    client.put("/v1/governance/rules", json={"rules": RULES}, headers=_as_key(client.keys["admin"]))
    body = {"title": "Ship", "kind": "spend", "evidence": ["metric:gmv"],
            "payload": {"amount_minor": 1, "currency": "CNY", "purpose": "x"}}  # fmt: skip
    r = client.post("/v1/decisions", json=body, headers=_as_key(client.keys["dan"]))
    assert r.status_code == 400 and "read from the warehouse" in r.json()["error"]["message"]


def test_cli_the_protection_fund_fills_through_an_approved_spend(home):
    _run(home, "decision", "rules", "set", str(home / "rules.json"), "--actor", "admin")
    r = _run(home, "ledger", "fund", "show")
    assert r.exit_code == 0 and "the protection fund has no movements" in r.output
    r = _run(home, "ledger", "fund", "top-up", "200000", "--purpose", "appeals this quarter",
             "--actor", "dan")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "decision #1 proposed: needs 2 of ana, bo, chen" in r.output
    assert "filled when it is approved" in r.output
    assert (
        json.loads(_run(home, "ledger", "fund", "show", "--format", "json").output)["funds"] == []
    )
    for voter in ("ana", "bo"):
        assert _run(home, "decision", "approve", "1", "--actor", voter).exit_code == 0
    shown = json.loads(_run(home, "ledger", "fund", "show", "--format", "json").output)
    assert [(f["currency"], f["balance"], f["top_ups"]) for f in shown["funds"]] == [
        ("CNY", "200000.00", 1)
    ]
    assert shown["movements"][0]["memo"] == "spend decision #1: appeals this quarter"
    r = _run(home, "ledger", "fund", "show")
    assert "protection fund CNY: ¥200,000.00 held; 1 top-up(s) ¥200,000.00, 0 payout(s) ¥0.00" in (
        " ".join(r.output.split())
    )
    assert _run(home, "ledger", "check").exit_code == 0
    r = _run(home, "ledger", "fund", "top-up", "2000000", "--purpose", "x", "--actor", "dan")
    assert r.exit_code == 1 and "rejected: above the spend cap" in r.output
    for args, message in [
        (("ledger", "fund", "top-up", "-5", "--purpose", "x", "--actor", "dan"), "amount"),
        (("ledger", "fund", "top-up", "nan", "--purpose", "x", "--actor", "dan"), "amount"),
        (("ledger", "fund", "top-up", "1", "--purpose", "x\x00", "--actor", "dan"), "purpose"),
        (
            (
                "ledger",
                "fund",
                "top-up",
                "1",
                "--purpose",
                "x",
                "--currency",
                "XXX",
                "--actor",
                "dan",
            ),
            "currency",
        ),  # fmt: skip
        (
            (
                "decision",
                "propose",
                "--title",
                "x",
                "--kind",
                "spend",
                "--amount",
                "1",
                "--purpose",
                "x",
                "--fund",
                "reserve",
                "--actor",
                "dan",
            ),
            "unknown fund",
        ),  # fmt: skip
    ]:
        r = _run(home, *args)
        assert r.exit_code != 0 and message in r.output.lower(), (args, r.output)
        assert "Traceback" not in r.output


def test_api_the_protection_fund_fills_through_an_approved_spend(client):
    client.put("/v1/governance/rules", json={"rules": RULES}, headers=_as_key(client.keys["admin"]))
    body = {"title": "Fund", "kind": "spend", "payload": {"amount_minor": 5_000_000,
            "currency": "CNY", "purpose": "appeals", "fund": "protection_fund"}}  # fmt: skip
    d = client.post("/v1/decisions", json=body, headers=_as_key(client.keys["dan"])).json()
    assert client.get("/v1/protection-fund").json() == {
        "funds": [],
        "movements": [],
        "movement_count": 0,
    }
    for voter in ("ana", "bo"):
        r = client.post(f"/v1/decisions/{d['id']}/approve", json={},
                        headers=_as_key(client.keys[voter]))  # fmt: skip
        assert r.status_code == 200, r.text
    assert r.json()["effect_status"] == "applied"
    fund = client.get("/v1/protection-fund").json()
    assert fund["funds"][0] | {} == {
        "currency": "CNY", "balance_minor": 5_000_000, "balance": "50000.00", "top_ups": 1,
        "topped_up_minor": 5_000_000, "topped_up": "50000.00", "payouts": 0,
        "paid_out_minor": 0, "paid_out": "0.00",
    }  # fmt: skip
    assert fund["movements"][0]["transfer"] == f"fund:top-up:decision:{d['id']}"
    bad = {**body, "payload": {**body["payload"], "fund": "reserve"}}
    r = client.post("/v1/decisions", json=bad, headers=_as_key(client.keys["dan"]))
    assert r.status_code == 422 and "fund" in r.text
    for limit in ("0", "1001", "abc", "1e3"):
        assert client.get("/v1/protection-fund", params={"limit": limit}).status_code == 422
