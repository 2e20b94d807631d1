"""A decision page shows what was frozen: each evidence item's conclusion, key figures and chart
beside its digest; vote controls only for who may still vote; audit details as readable JSON."""

from __future__ import annotations

import html
import json
import re

import pytest
from dashboard_world import populate, seed_governance
from fastapi.testclient import TestClient

from refund_helpers import make_env
from tianping.server.app import create_app
from tianping.settings import Settings


@pytest.fixture
def world(store_url, tmp_path):
    app = create_app(Settings(home=tmp_path, store=store_url), env=make_env())
    with TestClient(app) as c:
        yield c, populate(app, c)


def _sign_in(client, key):
    client.cookies.clear()
    assert client.post("/dashboard/sign-in", data={"key": key},
                       follow_redirects=False).status_code == 303  # fmt: skip


def _freeze(app, decision_id: int, position: int, kind: str, ref: str, data) -> None:
    """Evidence frozen as `propose --evidence` freezes it (these tests build no warehouse)."""
    from tianping.audit import canonical
    from tianping.governance.models import DecisionEvidence

    store = app.state.store
    text = canonical.dumps(data)
    store.transact(lambda s: s.add(DecisionEvidence(
        decision_id=decision_id, position=position, kind=kind, ref=ref, content=text,
        sha256=canonical.sha256(text), captured_at=store.env.clock.now())))  # fmt: skip


def _experiment_report() -> dict:
    """The issue's case: a treatment that wins on conversion and hurts the GMV guardrail."""
    from tianping.experiments.report import ReportPlan, build_report
    from tianping.stats import ArmStats

    plan = ReportPlan("red-packet", ("control", "treatment"), (0.5, 0.5), "conversion",
                      guardrails=(("gmv", True),), cuped=False, window=("2024-05-01", "2024-05-28"))  # fmt: skip
    stats = {"conversion": [ArmStats("control", 1000, 100), ArmStats("treatment", 1000, 160)],
             "gmv": [ArmStats("control", 1000, 10_000, 3.6e6),
                     ArmStats("treatment", 1000, 7_000, 5e4)]}  # fmt: skip
    return build_report(plan, stats, [1000, 1000]).to_dict()


def _article(page: str, position: int) -> str:
    found = re.search(rf'<article class="card evidence" data-position="{position}">(.*?)</article>',
                      page, re.S)  # fmt: skip
    assert found, f"no evidence #{position}"
    return html.unescape(found.group(1))


def test_each_evidence_item_shows_its_conclusion_figures_chart_and_digest(world):
    from tianping.governance import service

    client, w = world
    decision_id = seed_governance(client.app)  # a spend by Ana with a plan document
    store = client.app.state.store
    goal = store.transact(lambda s: service.propose(
        service.Proposal("Keep the GMV goal", "spend", {"amount_minor": 1_000, "currency": "CNY",
                                                         "purpose": "review"},
                         evidence=("goal:gmv-2026",)), session=s, actor="Ana").id)  # fmt: skip
    _freeze(client.app, decision_id, 2, "experiment", "experiment:red-packet", _experiment_report())
    _freeze(client.app, decision_id, 3, "metric", "metric:gmv@month",
            {"metric": "gmv", "grain": "month",
             "history": [["2024-04-01", "1000.00"], ["2024-05-01", "1250.50"]]})  # fmt: skip
    _sign_in(client, w["keys"]["admin"])
    page = client.get(f"/dashboard/decisions/{decision_id}").text
    api = client.get(f"/v1/decisions/{decision_id}",
                     headers={"Authorization": f"Bearer {w['keys']['admin']}"}).json()  # fmt: skip
    digests = re.findall(r'<code class="digest">([0-9a-f]{64})</code>', page)
    assert digests == [e["sha256"] for e in api["evidence"]] and len(digests) == 3

    experiment = _article(page, 2)
    assert "<strong>do not ship</strong>" in experiment
    assert "treatment improved conversion but significantly hurt guardrail(s) gmv" in experiment
    assert "gmv (guardrail), treatment</dt><dd>-30.00% [-55.72%, -4.28%], relative p 0.0223" in \
        experiment  # fmt: skip
    assert experiment.count("<svg") == 1 and "gmv: treatment" in experiment
    assert '"recommendation": "do not ship"' in experiment  # the frozen JSON, pretty

    metric = _article(page, 3)
    assert "<strong>gmv by month: 1,250.50 in 2024-05-01</strong>" in metric
    assert "+25.05%" in metric and 'aria-label="gmv by month"' in metric

    document = _article(page, 1)
    assert "a document attached as it is" in document and '"cities": 3' in document

    page = client.get(f"/dashboard/decisions/{goal}").text
    goal_item = _article(page, 1)
    assert "goal gmv-2026: gmv to 1,200,000 by 2026-12-31 (revision 2 of 2)" in goal_item
    assert "618 came in strong" in goal_item and "<svg" in goal_item


def test_vote_controls_only_for_who_may_still_vote(world):
    from tianping.governance import service

    client, w = world
    decision_id = seed_governance(client.app)  # Ana proposed; Ada, Oli, Bo approve, 2 of 3
    url = f"/dashboard/decisions/{decision_id}"
    store = client.app.state.store
    own = store.transact(lambda s: service.propose(
        service.Proposal("Oli's own spend", "spend",
                         {"amount_minor": 1_000, "currency": "CNY", "purpose": "tea"}),
        session=s, actor="Oli").id)  # fmt: skip

    def form(page: str) -> bool:
        return 'action="/dashboard/decisions/' in page and 'value="approve"' in page

    def why(page: str) -> str:
        return html.unescape(re.search(r'<p class="muted" id="no-vote">(.*?)</p>', page).group(1))

    _sign_in(client, w["keys"]["operator"])  # Oli
    page = client.get(url).text
    assert form(page)
    assert not form(client.get(f"/dashboard/decisions/{own}").text)
    assert "Oli proposed this decision" in why(client.get(f"/dashboard/decisions/{own}").text)
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)
    client.post(f"{url}/vote", data={"choice": "approve", "csrf": csrf})
    page = client.get(url).text
    assert not form(page) and "Oli already voted on this decision" in why(page)
    _sign_in(client, w["keys"]["analyst"])
    assert "analyst keys do not vote on decisions" in why(client.get(url).text)
    _sign_in(client, w["keys"]["admin"])  # Ada: the second approval closes it
    page = client.get(url).text
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)
    client.post(f"{url}/vote", data={"choice": "approve", "csrf": csrf})
    page = client.get(url).text
    assert not form(page) and "already approved; votes are closed" in why(page)


def test_audit_details_and_payloads_are_readable_json(world):
    client, w = world
    decision_id = seed_governance(client.app)
    _sign_in(client, w["keys"]["admin"])
    page = client.get(f"/dashboard/decisions/{decision_id}").text
    details = [html.unescape(d) for d in re.findall(
        r'<td class="detail"><pre class="json">(.*?)</pre></td>', page, re.S)]  # fmt: skip
    assert details and all(json.loads(d) is not None for d in details)
    proposed = json.loads(details[0])
    assert proposed["approvers"] == ["Ada", "Oli", "Bo"] and details[0].startswith("{\n  ")
    assert "{'" not in html.unescape(page) and "None" not in re.sub(r"<[^>]+>", "", page)
