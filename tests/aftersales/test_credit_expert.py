"""Expert buyer credit scorecard: hand-computed cases, band structure and monotonicity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tianping.aftersales.credit import (
    EXPERT_SCORECARD,
    FEATURE_COLUMNS,
    Band,
    BuyerFeatures,
    Characteristic,
    score_buyers,
    score_one,
)
from tianping.errors import InvalidInput, NotFound


def one(**values) -> BuyerFeatures:
    return BuyerFeatures.from_columns({"buyer_id": ["b"], **{k: [v] for k, v in values.items()}})


def test_new_buyer_scores_600_with_clean_record_points():
    result = score_buyers(one())
    assert int(result.score[0]) == 600
    by_name = {line.name: line.points for line in result.explain(0)}
    # no history: only the clean-record bands earn points (20+10+20+20+20+20)
    assert by_name == {
        "account_age_days": 0, "orders": 0, "spend_minor": 0, "claim_ratio": 20,
        "refund_only_ratio": 10, "appeals_upheld": 20, "max_weekly_claims": 20,
        "not_received_claims": 20, "misrepresentation_claims": 20,
    }  # fmt: skip


def test_best_history_reaches_950():
    best = one(account_age_days=2000, orders=500, spend_minor=5_000_000, expected_claims=50,
               expected_refund_only=10)  # fmt: skip
    assert int(score_buyers(best).score[0]) == 950


def test_hand_computed_regular_buyer():
    # 400 days, 30 orders, 2,500 yuan, 2 claims where 3 were expected, 1 refund-only of 1 expected
    f = one(account_age_days=400, orders=30, spend_minor=250_000, claims=2, expected_claims=3,
            refund_only=1, expected_refund_only=1, max_weekly_claims=1, not_received_claims=1)  # fmt: skip
    r = score_buyers(f)
    # claim ratio (2+2)/(3+2) = 0.8 -> 40; refund-only (1+2)/(1+2) = 1 -> 10
    assert r.inputs["claim_ratio"][0] == pytest.approx(0.8)
    expected = 490 + 90 + 50 + 40 + 40 + 10 + 20 + 20 + 0 + 20
    assert int(r.score[0]) == expected == 780


def test_professional_abuser_is_clipped_to_350():
    f = one(account_age_days=20, orders=12, spend_minor=50_000, claims=12, expected_claims=1.2,
            refund_only=10, expected_refund_only=0.5, appeals_upheld=3, max_weekly_claims=10,
            not_received_claims=5, misrepresentation_claims=6)  # fmt: skip
    r = score_buyers(f)
    assert int(r.raw[0]) == 490 + 0 + 50 + 20 - 180 - 120 - 220 - 180 - 150 - 160
    assert int(r.score[0]) == 350


def test_band_edges_are_left_closed():
    ages = np.array([29.999, 30, 179.9, 180, 365, 1095])
    f = BuyerFeatures.from_columns({"buyer_id": list("abcdef"), "account_age_days": ages})
    r = score_buyers(f)
    assert r.points[:, 0].tolist() == [0, 30, 30, 60, 90, 130]


def test_explanations_sum_to_the_raw_score():
    rng = np.random.default_rng(7)
    n = 200
    cols = {c: rng.integers(0, 20, n).astype(float) for c in FEATURE_COLUMNS}
    cols["spend_minor"] = rng.integers(0, 2_000_000, n)
    f = BuyerFeatures.from_columns({"buyer_id": [f"b{i}" for i in range(n)], **cols})
    r = score_buyers(f)
    for i in range(0, n, 37):
        assert EXPERT_SCORECARD.base + sum(x.points for x in r.explain(i)) == r.raw[i]
    assert r.to_rows(points=True)[0]["score"] == int(r.score[0])
    assert r.index_of("b5") == 5
    with pytest.raises(NotFound):
        r.index_of("nobody")


def test_every_characteristic_has_contiguous_bands_and_reasons():
    for c in EXPERT_SCORECARD.characteristics:
        assert c.bands[0].lower == 0 and c.bands[-1].upper == np.inf
        assert all(b.reason for b in c.bands)


def test_bad_bands_and_bad_features_are_rejected():
    with pytest.raises(InvalidInput, match="contiguous"):
        Characteristic("x", (Band(0, 1, 0, "a"), Band(2, np.inf, 0, "b")))
    with pytest.raises(InvalidInput, match="cover"):
        Characteristic("x", (Band(1, np.inf, 0, "a"),))
    with pytest.raises(InvalidInput, match="orders.*buyer 'b'"):
        one(orders=-1)
    with pytest.raises(InvalidInput, match="non-negative"):
        one(claims=float("nan"))
    with pytest.raises(InvalidInput, match="unknown buyer feature"):
        BuyerFeatures.from_columns({"buyer_id": ["b"], "karma": [1]})


history = st.fixed_dictionaries(
    {
        "account_age_days": st.floats(0, 5000),
        "orders": st.integers(0, 1000),
        "spend_minor": st.integers(0, 10**8),
        "claims": st.integers(0, 100),
        "expected_claims": st.floats(0, 100),
        "refund_only": st.integers(0, 100),
        "expected_refund_only": st.floats(0, 100),
        "appeals_upheld": st.integers(0, 10),
        "max_weekly_claims": st.integers(0, 30),
        "not_received_claims": st.integers(0, 10),
        "misrepresentation_claims": st.integers(0, 10),
    }
)
BAD_SIGNS = ("claims", "refund_only", "appeals_upheld", "max_weekly_claims",
             "not_received_claims", "misrepresentation_claims")  # fmt: skip
GOOD_SIGNS = ("account_age_days", "orders", "spend_minor", "expected_claims",
              "expected_refund_only")  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(history, st.sampled_from(BAD_SIGNS + GOOD_SIGNS), st.integers(1, 50))
def test_more_bad_history_never_raises_the_score(h, name, step):
    worse = dict(h)
    worse[name] = h[name] + step if name in BAD_SIGNS else max(h[name] - step, 0)
    r = score_buyers(BuyerFeatures.from_columns({"buyer_id": ["a", "b"],
                                                 **{k: [h[k], worse[k]] for k in h}}))  # fmt: skip
    assert MIN <= r.score[1] <= r.score[0] <= MAX


MIN, MAX = 350, 950


_VALUE = st.one_of(
    st.integers(0, 5000).map(float),
    st.floats(0, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 3.0, 10.0, 30.0, 50.0, 180.0, 365.0, 1095.0]),  # band edges
)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={c: _VALUE for c in FEATURE_COLUMNS}))
def test_one_buyer_scored_without_arrays_equals_the_batch_scorer(values):
    features = BuyerFeatures.from_columns(
        {"buyer_id": ["b"], **{k: [v] for k, v in values.items()}}
    )
    assert score_one(values) == int(score_buyers(features).score[0])


def test_one_buyer_scoring_refuses_what_the_batch_scorer_refuses():
    with pytest.raises(InvalidInput, match="'orders' is -1.0"):
        score_one({"orders": -1})
    with pytest.raises(InvalidInput, match="unknown buyer feature"):
        score_one({"ordres": 3})
