"""Evaluating policies: hand-computed decisions, explanations, boundaries and invariants."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tianping.aftersales.policy import (
    ACTIONS,
    Coded,
    RefundInputs,
    evaluate,
    evaluate_batch,
    load_builtin,
    parse_policy,
    refund_amount,
)
from tianping.errors import InvalidInput

SHIPPED = ["pinduoduo-2021", "taobao-2023-12", "taobao-2024-08", "1688-2025-03"]
QUALITY = "quality"


def req(**kw) -> RefundInputs:
    base = dict(
        amount_minor=5000, currency="CNY", category="food", reason=QUALITY, buyer_score=600,
        merchant_score=4.5, defect_flag=False, delivered=True, days_since_delivery=2,
        buyer_recent_claims=0, abnormal_behaviour=False,
    )  # fmt: skip
    return RefundInputs(**(base | kw))


def decide(policy: str, **kw):
    d = evaluate(load_builtin(policy), req(**kw))
    return d.rule_id, d.action, d.refund_amount_minor, d.requires_return, d.payer


# -- hand-computed decisions of the shipped policies -----------------------------------------


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"amount_minor": 1999}, ("small-order", "refund_only", 1999, False, "merchant")),
        ({"amount_minor": 2000}, ("quality-return", "return_and_refund", 2000, True, "merchant")),
        (
            {"amount_minor": 2000, "buyer_score": 700},
            ("excellent-credit-partial", "partial_refund", 1000, False, "merchant"),
        ),
        (
            {"amount_minor": 2001, "buyer_score": 700},
            ("excellent-credit-partial", "partial_refund", 1001, False, "merchant"),
        ),
        (
            {"amount_minor": 2001, "buyer_score": 699.99},
            ("quality-return", "return_and_refund", 2001, True, "merchant"),
        ),
        (
            {"amount_minor": 1999, "category": "electronics"},
            ("quality-return", "return_and_refund", 1999, True, "merchant"),
        ),
        (
            {"reason": "changed_mind", "days_since_delivery": 7},
            ("changed-mind", "return_and_refund", 5000, True, "merchant"),
        ),
        (
            {"reason": "changed_mind", "days_since_delivery": 8},
            ("changed-mind-late", "reject", 0, False, None),
        ),
        (
            {"delivered": False, "days_since_delivery": 0},
            ("not-delivered", "refund_only", 5000, False, "merchant"),
        ),
        ({"reason": "empty_parcel"}, ("review", "manual_review", 0, False, None)),
        (
            {"reason": "empty_parcel", "amount_minor": 1500},
            ("small-order", "refund_only", 1500, False, "merchant"),
        ),
    ],
)
def test_pinduoduo_2021(kw, expected):
    assert decide("pinduoduo-2021", **kw) == expected


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        (
            {"defect_flag": True, "amount_minor": 50000},
            ("data-judged-defect", "refund_only", 50000, False, "merchant"),
        ),
        (
            {"defect_flag": True, "reason": "not_received"},
            ("review", "manual_review", 0, False, None),
        ),
        (
            {"buyer_score": 700, "amount_minor": 9999},
            ("trusted-buyer-small-order", "refund_only", 9999, False, "merchant"),
        ),
        (
            {"buyer_score": 700, "amount_minor": 10000},
            ("quality-return", "return_and_refund", 10000, True, "merchant"),
        ),
        (
            {"buyer_score": 699.5, "amount_minor": 9999},
            ("quality-return", "return_and_refund", 9999, True, "merchant"),
        ),
    ],
)
def test_taobao_2023_12(kw, expected):
    assert decide("taobao-2023-12", **kw) == expected


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        (
            {"abnormal_behaviour": True, "merchant_score": 5.0},
            ("abnormal-behaviour", "reject", 0, False, None),
        ),
        ({"buyer_recent_claims": 5}, ("frequent-claims", "manual_review", 0, False, None)),
        (
            {"buyer_recent_claims": 4, "defect_flag": True},
            ("data-judged-defect", "refund_only", 5000, False, "merchant"),
        ),
        (
            {"merchant_score": 4.8, "defect_flag": True},
            ("data-judged-defect", "merchant_negotiation", 0, False, None),
        ),
        (  # negotiation first covers returns too, never the platform's refusals
            {"merchant_score": 4.9, "reason": "changed_mind", "days_since_delivery": 3},
            ("changed-mind", "merchant_negotiation", 0, False, None),
        ),
        (
            {"merchant_score": 4.9, "reason": "changed_mind", "days_since_delivery": 8},
            ("changed-mind-late", "reject", 0, False, None),
        ),
        (
            {"merchant_score": 4.79, "defect_flag": True},
            ("data-judged-defect", "refund_only", 5000, False, "merchant"),
        ),
        (
            {"reason": "empty_parcel", "merchant_score": 4.9},
            ("empty-parcel", "manual_review", 0, False, None),
        ),
        (
            {"delivered": False, "merchant_score": 4.9},
            ("not-delivered", "refund_only", 5000, False, "merchant"),
        ),
    ],
)
def test_taobao_2024_08(kw, expected):
    assert decide("taobao-2024-08", **kw) == expected


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        (
            {"buyer_score": 650, "amount_minor": 500000},
            ("credible-quality-claim", "refund_only", 500000, False, "platform"),
        ),
        (
            {"buyer_score": 650, "amount_minor": 500001},
            ("quality-return", "return_and_refund", 500001, True, "merchant"),
        ),
        (
            {"buyer_score": 649, "amount_minor": 3000},
            ("quality-return", "return_and_refund", 3000, True, "merchant"),
        ),
        (
            {"buyer_score": 900, "category": "electronics"},
            ("credible-quality-claim-electronics", "return_and_refund", 5000, True, "platform"),
        ),
        (
            {"abnormal_behaviour": True, "buyer_score": 900},
            ("abnormal-behaviour", "reject", 0, False, None),
        ),
    ],
)
def test_1688_2025_03(kw, expected):
    assert decide("1688-2025-03", **kw) == expected


def test_decision_explains_the_rule_and_each_condition():
    d = evaluate(load_builtin("pinduoduo-2021"), req(amount_minor=2500, buyer_score=850))
    assert d.rule_id == "excellent-credit-partial" and d.fraction == "0.5"
    matched = {m.input: (m.condition, m.value) for m in d.matched}
    assert matched["amount_minor"] == ("amount_minor >= 2000", 2500)
    assert matched["buyer_score"] == ("buyer_score >= 700", 850)
    assert matched["delivered"] == ("delivered = true", True)
    assert [r.code for r in d.reasons] == ["excellent_credit"]
    assert "keep the goods" in d.reasons[0].buyer and "50%" in d.reasons[0].merchant
    text = d.explain()
    assert text.startswith(
        f"policy pinduoduo-2021@{d.policy_version[:12]}: rule excellent-credit-partial"
    )
    assert "buyer_score >= 700 (was 850)" in text and text.endswith("-> partial_refund")
    body = json.loads(json.dumps(d.to_dict()))
    assert body["refund_amount_minor"] == 1250 and body["policy_version"] == d.policy_version


def test_catch_all_explains_itself():
    d = evaluate(load_builtin("pinduoduo-2021"), req(reason="other"))
    assert d.matched == () and "catch-all" in d.explain() and not d.automatic


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"currency": "USD"}, "currency"),
        ({"buyer_score": 951}, "buyer_score"),
        ({"amount_minor": -1}, "amount_minor"),
        ({"amount_minor": 12.5}, "amount_minor"),
        ({"amount_minor": 10**12 + 1}, "amount_minor"),
        ({"delivered": 1}, "delivered"),
        ({"days_since_delivery": -1}, "days_since_delivery"),
        ({"merchant_score": float("nan")}, "merchant_score"),
        ({"category": None}, "category"),
    ],
)
def test_bad_inputs_name_their_field(kw, field):
    with pytest.raises(InvalidInput) as exc:
        evaluate(load_builtin("taobao-2024-08"), req(**kw))
    assert exc.value.field == field


def test_inputs_from_json_name_unknown_and_missing_fields():
    with pytest.raises(InvalidInput, match="unknown input field"):
        RefundInputs.from_mapping({"amount_minor": 1, "colour": "red"})
    with pytest.raises(InvalidInput, match="missing input field.*reason"):
        RefundInputs.from_mapping({"amount_minor": 1, "currency": "CNY", "category": "food"})


@pytest.mark.parametrize(
    ("amount", "fraction", "rounding", "expected"),
    [
        (2005, Fraction(1, 2), "half_up", 1003),
        (2005, Fraction(1, 2), "half_even", 1002),
        (2007, Fraction(1, 2), "half_even", 1004),
        (2005, Fraction(1, 2), "down", 1002),
        (2005, Fraction(1, 2), "up", 1003),
        (1001, Fraction(3333, 10000), "half_up", 334),  # 333.6333
        (1001, Fraction(3333, 10000), "down", 333),
        (10**12, Fraction(9999, 10000), "half_up", 999_900_000_000),
        (0, Fraction(1, 2), "up", 0),
    ],
)
def test_refund_rounding_is_exact(amount, fraction, rounding, expected):
    assert refund_amount(amount, fraction, rounding) == expected
    arr = np.array([amount], dtype=np.int64)
    q, r = np.divmod(arr * fraction.numerator, fraction.denominator)
    from tianping.aftersales.policy import _round_up

    assert int(q[0] + _round_up(q, r, fraction.denominator, rounding)[0]) == expected


# -- properties ------------------------------------------------------------------------------

CATEGORIES = ["food", "apparel", "electronics", "books", "toys", ""]
REASONS = [
    "quality",
    "damaged",
    "wrong_item",
    "not_received",
    "empty_parcel",
    "changed_mind",
    "other",
]
AMOUNTS = st.one_of(
    st.sampled_from([0, 1, 1999, 2000, 2001, 9999, 10000, 10001, 499999, 500000, 500001, 10**12]),
    st.integers(0, 10**12),
)
SCORES = st.one_of(
    st.sampled_from([350, 649.999, 650, 699, 700, 799.5, 800, 950]), st.floats(350, 950)
)
MERCHANT = st.one_of(st.sampled_from([0, 4.79, 4.8, 4.81, 5]), st.floats(0, 5))
DAYS = st.one_of(st.sampled_from([0, 7, 8]), st.integers(0, 400))
CLAIMS = st.one_of(st.sampled_from([0, 4, 5]), st.integers(0, 50))

inputs = st.builds(
    RefundInputs,
    amount_minor=AMOUNTS, currency=st.just("CNY"), category=st.sampled_from(CATEGORIES),
    reason=st.sampled_from(REASONS), buyer_score=SCORES, merchant_score=MERCHANT,
    defect_flag=st.booleans(), delivered=st.booleans(), days_since_delivery=DAYS,
    buyer_recent_claims=CLAIMS, abnormal_behaviour=st.booleans(),
    evidence_count=st.integers(0, 20), has_photo=st.booleans(),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(SHIPPED), x=inputs, s1=SCORES, s2=SCORES)
def test_higher_buyer_score_never_gets_a_worse_outcome(name, x, s1, s2):
    policy = load_builtin(name)
    lo, hi = sorted([s1, s2])
    a = evaluate(policy, RefundInputs(**{**_fields(x), "buyer_score": lo}))
    b = evaluate(policy, RefundInputs(**{**_fields(x), "buyer_score": hi}))
    assert b.outcome_key >= a.outcome_key


def _fields(x: RefundInputs) -> dict:
    return {f: getattr(x, f) for f in RefundInputs.__dataclass_fields__}


def _columns(rows: list[RefundInputs], coded: bool) -> dict:
    cols = {f: [getattr(r, f) for r in rows] for f in RefundInputs.__dataclass_fields__}
    out = {k: np.array(v) for k, v in cols.items() if k not in ("category", "reason", "currency")}
    out["amount_minor"] = np.array(cols["amount_minor"], dtype=np.int64)
    out["days_since_delivery"] = np.array(cols["days_since_delivery"], dtype=np.int64)
    out["buyer_recent_claims"] = np.array(cols["buyer_recent_claims"], dtype=np.int64)
    for name in ("category", "reason"):
        values = np.array(cols[name], dtype=object)
        if coded:
            labels = sorted(set(cols[name]))
            out[name] = Coded(np.array([labels.index(v) for v in values], dtype=np.int32), labels)
        else:
            out[name] = values
    out["currency"] = "CNY"
    return out


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(SHIPPED),
    rows=st.lists(inputs, min_size=1, max_size=40),
    coded=st.booleans(),
)
def test_batch_equals_single(name, rows, coded):
    policy = load_builtin(name)
    batch = evaluate_batch(policy, _columns(rows, coded))
    for i, x in enumerate(rows):
        d = evaluate(policy, x)
        assert batch.row(i) == {
            "rule_id": d.rule_id, "action": d.action, "refund_amount_minor": d.refund_amount_minor,
            "requires_return": d.requires_return, "payer": d.payer,
        }  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(
    threshold=st.integers(1, 10**12 - 1),
    inclusive=st.booleans(),
    fraction=st.sampled_from(["0.5", "0.3333", "0.0001", "0.9999"]),
    rounding=st.sampled_from(["half_up", "half_even", "down", "up"]),
)
def test_boundary_amounts_land_on_the_documented_side(threshold, inclusive, fraction, rounding):
    low_op, high_op = ("lte", "gt") if inclusive else ("lt", "gte")
    policy = parse_policy(
        {
            "name": "edge", "title": "edge", "source": "test", "currency": "CNY", "rounding": rounding,
            "reasons": {"r": {"buyer": "b", "merchant": "m"}},
            "rules": [
                {"id": "low", "when": {"amount_minor": {low_op: threshold}},
                 "then": {"action": "refund_only", "payer": "merchant", "reasons": ["r"]}},
                {"id": "high", "when": {"amount_minor": {high_op: threshold}},
                 "then": {"action": "partial_refund", "fraction": fraction, "payer": "platform", "reasons": ["r"]}},
            ],
        }
    )  # fmt: skip
    amounts = [threshold - 1, threshold, threshold + 1]
    expected = ["low", "low" if inclusive else "high", "high"]
    rows = [req(amount_minor=a) for a in amounts]
    batch = evaluate_batch(policy, _columns(rows, coded=False))
    for i, (x, rid) in enumerate(zip(rows, expected, strict=True)):
        d = evaluate(policy, x)
        assert d.rule_id == rid == batch.row(i)["rule_id"]
        want = (
            x.amount_minor
            if rid == "low"
            else refund_amount(x.amount_minor, Fraction(fraction), rounding)
        )
        assert d.refund_amount_minor == want == batch.row(i)["refund_amount_minor"]


def test_batch_rejects_bad_columns():
    policy = load_builtin("taobao-2024-08")
    cols = _columns([req(), req(buyer_score=900)], coded=False)
    with pytest.raises(InvalidInput, match="column buyer_score, row 1"):
        evaluate_batch(policy, cols | {"buyer_score": np.array([600.0, 990.0])})
    with pytest.raises(InvalidInput, match="missing column"):
        evaluate_batch(policy, {k: v for k, v in cols.items() if k != "reason"})
    with pytest.raises(InvalidInput, match="must be boolean"):
        evaluate_batch(policy, cols | {"delivered": np.array([1, 0])})
    with pytest.raises(InvalidInput, match="currency 'USD'"):
        evaluate_batch(policy, cols | {"currency": np.array(["CNY", "USD"])})
    with pytest.raises(InvalidInput, match="has 1 rows"):
        evaluate_batch(policy, cols | {"merchant_score": np.array([4.0])})


def test_batch_summaries():
    policy = load_builtin("taobao-2024-08")
    rows = [req(), req(abnormal_behaviour=True), req(merchant_score=4.9), req(delivered=False)]
    batch = evaluate_batch(policy, _columns(rows, coded=True))
    assert list(batch.actions) == [
        "return_and_refund",
        "reject",
        "merchant_negotiation",
        "refund_only",
    ]
    assert list(batch.automatic) == [True, True, False, True]
    assert list(batch.payers) == ["merchant", None, None, "merchant"]
    assert ACTIONS[batch.action_code[0]] == "return_and_refund"


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(SHIPPED), x=inputs)
def test_zen_engine_picks_the_same_rule(name, x):
    zen = pytest.importorskip("zen")
    from tianping.aftersales.policy_jdm import to_jdm

    policy = load_builtin(name)
    graph = _ZEN.setdefault(name, zen.ZenEngine().create_decision(json.dumps(to_jdm(policy))))
    result = graph.evaluate(_fields(x))["result"]
    d = evaluate(policy, x)
    assert (result["rule_id"], result["action"]) == (d.rule_id, d.action)


_ZEN: dict = {}
