"""The shipped example policy fair to both sides (``two-sided-2026-12``): it uses rings,
evidence and negotiation first, and refuses nobody without a person (pure, plus one small
simulated market for the ring inputs of a replay)."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from tianping.aftersales.policy import RefundInputs, evaluate, evaluate_batch, load_builtin

POLICY = "two-sided-2026-12"
BASE = dict(
    amount_minor=15_000, currency="CNY", category="food", reason="quality", buyer_score=650,
    merchant_score=4.5, defect_flag=False, delivered=True, days_since_delivery=2,
    buyer_recent_claims=0,
)  # fmt: skip
RING = "shares device D17 and card F3 with 3 other accounts; 3 of the ring's accounts claimed 4 times in 48 h"


def _decide(**changes):
    return evaluate(load_builtin(POLICY), RefundInputs(**{**BASE, **changes}))


def test_a_bursting_ring_goes_to_a_person_who_sees_the_shared_values():
    d = _decide(ring_size=4, ring_burst_accounts=3, ring_reason=RING)
    assert (d.action, d.rule_id, [r.code for r in d.reasons]) == (
        "manual_review", "abuse-ring", ["ring_check"],
    )  # fmt: skip
    assert d.ring_reason == RING and "device D17" in d.explain()
    # a ring that did not claim together, or a pair, decides as any buyer
    assert _decide(ring_size=4, ring_burst_accounts=1).rule_id == "quality-return"
    assert _decide(ring_size=2, ring_burst_accounts=2).rule_id == "quality-return"


def test_a_photo_from_a_buyer_of_fair_credit_is_refunded_without_return():
    d = _decide(evidence_count=1, has_photo=True)
    assert (d.action, d.rule_id, d.refund_amount_minor) == (
        "refund_only", "quality-with-photo", 15_000,
    )  # fmt: skip
    assert _decide(evidence_count=1, has_photo=False).rule_id == "quality-return"
    assert _decide(evidence_count=1, has_photo=True, buyer_score=599).rule_id == "quality-return"


def test_nobody_is_refused_without_a_person_and_top_stores_negotiate_first():
    assert _decide(abnormal_behaviour=True).action == "manual_review"
    late = _decide(reason="changed_mind", days_since_delivery=9)
    assert (late.action, late.rule_id) == ("manual_review", "changed-mind-late")
    top = _decide(merchant_score=4.8)
    assert (top.action, [r.code for r in top.reasons]) == ("merchant_negotiation", ["top_store"])
    assert _decide(merchant_score=4.9, delivered=False).rule_id == "not-delivered"


def test_a_replay_on_the_rings_scenario_sends_bursting_rings_to_a_person():
    """The replay's ring inputs come from the warehouse as of the window's start: ring
    accounts that claimed together before it are sent to a person."""
    from tianping.aftersales.replay import replay_inputs
    from tianping.settings import Settings
    from tianping.simulate.service import load_scenario, run_simulation
    from tianping.warehouse import connect

    folder = Path(tempfile.mkdtemp())
    wh = connect(Settings(home=folder, warehouse=f"duckdb://{folder / 'w.duckdb'}"))
    start = date(2024, 4, 1)
    try:
        run_simulation(wh, buyers=6000, days=90, seed=3, start=start,
                       scenario=load_scenario("rings"))  # fmt: skip
        end = start + timedelta(days=89)
        inputs = replay_inputs(wh, start=end - timedelta(days=44), end=end)
        truth = wh.to_arrow(wh.table("refund_truth").select("refund_id", "abuse_kind"))
        kinds = dict(zip(*(truth.column(c).to_pylist() for c in truth.column_names), strict=True))
    finally:
        wh.close()
    assert any(n.startswith("ring inputs as of") for n in inputs.notes)
    policy = load_builtin(POLICY)
    batch = evaluate_batch(policy, inputs.columns | {"currency": policy.currency})
    rule = np.asarray(batch.rule_ids, dtype=object)[batch.rule_index]
    ring_rule = rule == "abuse-ring"
    kind = np.asarray([kinds.get(r) for r in inputs.refund_ids], dtype=object)
    assert ring_rule.sum() > 0
    # the rings' own abuse is several times as common among them as among all requests (the
    # rest are mostly the ring accounts' other claims, which a person then decides)
    base, caught = (kind == "ring").mean(), (kind[ring_rule] == "ring").mean()
    assert caught > 3 * base, (caught, base)
    flagged = (inputs.columns["ring_size"] >= 3) & (inputs.columns["ring_burst_accounts"] >= 2)
    assert np.array_equal(ring_rule & flagged, ring_rule)  # the rule fires on flagged buyers only
