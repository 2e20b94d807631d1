"""Negotiation first and evidence inputs in the policy evaluator (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from tianping.aftersales.policy import RefundInputs, evaluate, evaluate_batch, load_builtin
from tianping.errors import InvalidInput

BASE = dict(
    amount_minor=5000, currency="CNY", category="food", reason="quality", buyer_score=750,
    merchant_score=4.8, defect_flag=False, delivered=True, days_since_delivery=2,
    buyer_recent_claims=0,
)  # fmt: skip


def test_the_bar_is_inclusive_and_the_table_decides_below_it():
    policy = load_builtin("taobao-2024-08")
    at = evaluate(policy, RefundInputs(**BASE))
    below = evaluate(policy, RefundInputs(**{**BASE, "merchant_score": 4.7999}))
    assert (at.action, at.refund_amount_minor, at.payer) == ("merchant_negotiation", 0, None)
    assert [r.code for r in at.reasons] == ["top_store"]
    assert at.matched[-1].input == "merchant_score" and "negotiation first" in at.explain()
    assert (below.action, below.rule_id, below.refund_amount_minor) == (
        "refund_only", "trusted-buyer-small-order", 5000,
    )  # fmt: skip
    # the platform's decision when the negotiation lapses is the table's, at any score
    table = evaluate(policy, RefundInputs(**BASE), negotiate=False)
    assert (table.action, table.rule_id, table.refund_amount_minor) == (
        "refund_only", "trusted-buyer-small-order", 5000,
    )  # fmt: skip


def test_goods_not_delivered_are_refunded_at_once_even_at_top_stores():
    d = evaluate(load_builtin("taobao-2024-08"),
                 RefundInputs(**{**BASE, "delivered": False, "merchant_score": 5.0}))  # fmt: skip
    assert (d.action, d.rule_id) == ("refund_only", "not-delivered")


def test_evidence_defaults_to_none_and_batches_may_leave_its_columns_out():
    x = RefundInputs.from_mapping({**BASE, "abnormal_behaviour": False})
    assert (x.evidence_count, x.has_photo) == (0, False)
    cols = {k: np.array([v]) for k, v in BASE.items() if k != "currency"}
    cols |= {"currency": "CNY", "abnormal_behaviour": np.array([False])}
    cols["category"] = np.array(["food"], dtype=object)
    cols["reason"] = np.array(["quality"], dtype=object)
    policy = load_builtin("taobao-2024-08")
    b = evaluate_batch(policy, cols)
    assert b.row(0)["action"] == "merchant_negotiation"
    assert evaluate_batch(policy, cols, negotiate=False).row(0)["action"] == "refund_only"


def test_evidence_inputs_are_checked_like_any_input():
    policy = load_builtin("taobao-2024-08")
    with pytest.raises(InvalidInput, match="evidence_count"):
        evaluate(policy, RefundInputs(**BASE, evidence_count=-1))
    with pytest.raises(InvalidInput, match="has_photo"):
        evaluate(policy, RefundInputs(**BASE, has_photo=1))  # type: ignore[arg-type]


def test_negotiation_that_gives_the_better_buyer_the_worse_outcome_is_refused():
    from tianping.aftersales.policy import parse_policy

    doc = {
        "name": "unfair", "title": "t", "source": "tests", "currency": "CNY",
        "reasons": {"r": {"buyer": "b", "merchant": "m"}},
        "rules": [
            {"id": "low-credit", "priority": 10, "when": {"buyer_score": {"lt": 600}},
             "then": {"action": "refund_only", "payer": "merchant", "reasons": ["r"]}},
            {"id": "high-credit", "priority": 10, "when": {"buyer_score": {"gte": 600}},
             "then": {"action": "refund_only", "payer": "merchant", "reasons": ["r"]}},
        ],
    }  # fmt: skip
    parse_policy(doc | {"negotiation": {"quality_bar": 4.8, "sla_hours": 48}})  # both negotiate
    with pytest.raises(InvalidInput, match=r"high-credit \(negotiated first\) and low-credit|"
                       r"rules low-credit and high-credit \(negotiated first\)"):  # fmt: skip
        parse_policy(
            doc | {"negotiation": {"quality_bar": 4.8, "sla_hours": 48, "except": ["low-credit"]}}
        )
