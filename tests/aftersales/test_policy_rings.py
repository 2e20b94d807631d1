"""Ring inputs in refund policies: optional, tested like any input, cited with what is shared."""

from __future__ import annotations

import numpy as np
import pytest

from tianping.aftersales.policy import (
    RefundInputs,
    evaluate,
    evaluate_batch,
    load_builtin,
    parse_policy,
)
from tianping.errors import InvalidInput

REASON = "shares device D17 and card F3 with 4 other accounts; 3 of the ring's accounts claimed 5 times in 48 h"


def req(**kw) -> RefundInputs:
    base = dict(
        amount_minor=1500, currency="CNY", category="food", reason="quality", buyer_score=600,
        merchant_score=4.5, defect_flag=False, delivered=True, days_since_delivery=2,
        buyer_recent_claims=0,
    )  # fmt: skip
    return RefundInputs(**(base | kw))


RING_POLICY = parse_policy({
    "name": "rings", "title": "rings", "source": "test", "currency": "CNY",
    "reasons": {"ring": {"buyer": "We need to look at this request.", "merchant": "Linked accounts claimed together."},
                "ok": {"buyer": "Refunded.", "merchant": "Refunded."}},
    "rules": [
        {"id": "ring-burst", "priority": 10, "when": {"ring_size": {"gte": 3}, "ring_burst_accounts": {"gte": 2}},
         "then": {"action": "manual_review", "reasons": ["ring"]}},
        {"id": "small", "when": {"amount_minor": {"lte": 2000}},
         "then": {"action": "refund_only", "payer": "merchant", "reasons": ["ok"]}},
        {"id": "large", "when": {"amount_minor": {"gt": 2000}},
         "then": {"action": "return_and_refund", "payer": "merchant", "reasons": ["ok"]}},
    ],
})  # fmt: skip


def test_a_ring_rule_names_the_shared_values():
    d = evaluate(RING_POLICY, req(ring_size=5, ring_burst_accounts=3, ring_reason=REASON))
    assert d.rule_id == "ring-burst" and d.action == "manual_review"
    assert d.ring_reason == REASON
    assert "the buyer shares device D17 and card F3" in d.explain()
    assert d.to_dict()["ring_reason"] == REASON


def test_a_rule_without_ring_conditions_does_not_cite_the_ring():
    d = evaluate(RING_POLICY, req(ring_size=5, ring_burst_accounts=1, ring_reason=REASON))
    assert d.rule_id == "small" and d.ring_reason == "" and "shares" not in d.explain()


def test_ring_inputs_are_optional_and_default_to_no_ring():
    assert evaluate(RING_POLICY, req()).rule_id == "small"
    x = RefundInputs.from_mapping({k: getattr(req(), k) for k in (
        "amount_minor", "currency", "category", "reason", "buyer_score", "merchant_score",
        "defect_flag", "delivered", "days_since_delivery", "buyer_recent_claims")})  # fmt: skip
    assert (x.ring_size, x.ring_burst_accounts, x.ring_reason) == (1, 0, "")


def test_ring_inputs_are_checked_like_any_input():
    with pytest.raises(InvalidInput) as caught:
        evaluate(RING_POLICY, req(ring_size=0))
    assert caught.value.field == "ring_size"


def test_batch_reads_ring_columns_or_assumes_no_ring():
    base = {
        "amount_minor": np.array([1500, 1500, 3000], dtype=np.int64),
        "category": np.array(["food"] * 3, dtype=object),
        "reason": np.array(["quality"] * 3, dtype=object),
        "buyer_score": np.full(3, 600.0), "merchant_score": np.full(3, 4.5),
        "defect_flag": np.zeros(3, bool), "delivered": np.ones(3, bool),
        "days_since_delivery": np.full(3, 2), "buyer_recent_claims": np.zeros(3, np.int64),
        "abnormal_behaviour": np.zeros(3, bool), "currency": "CNY",
    }  # fmt: skip
    b = evaluate_batch(RING_POLICY, base)
    assert [b.rule_ids[i] for i in b.rule_index] == ["small", "small", "large"]
    rings = {"ring_size": np.array([5, 1, 4]), "ring_burst_accounts": np.array([3, 0, 2])}
    b = evaluate_batch(RING_POLICY, base | rings)
    assert [b.rule_ids[i] for i in b.rule_index] == ["ring-burst", "small", "ring-burst"]


def test_shipped_policies_ignore_rings():
    for name in ("pinduoduo-2021", "taobao-2024-08"):
        policy = load_builtin(name)
        assert (
            evaluate(policy, req(ring_size=8, ring_burst_accounts=8)).rule_id
            == evaluate(policy, req()).rule_id
        )
