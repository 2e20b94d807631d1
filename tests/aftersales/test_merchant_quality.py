"""Merchant quality score: hand-computed shrinkage, sub-scores, weights and missing data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tianping.aftersales.merchant import (
    COMPONENTS,
    MerchantFeatures,
    platform_norms,
    quality,
)
from tianping.errors import InvalidInput, NotFound

TWO = {
    "merchant_id": ["m1", "m2"],
    "orders": [100, 300],
    "reviews": [10, 30],
    "rating_sum": [45, 147],
    "quality_refunds": [2, 0],
    "complaints": [1, 0],
    "delivered": [90, 300],
    "on_time": [85, 300],
    "mode_known": [100, 300],
    "door": [60, 290],
    "responses": [2, 0],
    "response_hours_sum": [20, 0],
}


def test_weights_sum_to_one():
    assert sum(c.weight for c in COMPONENTS) == pytest.approx(1.0)


def sub(gap: float) -> float:
    """5 at a gap of 0.8 platform units or less, 0 at 3 or more, linear between."""
    return 5 * min(max((3.0 - gap) / 2.2, 0.0), 1.0)


def test_hand_computed_merchant():
    q = quality(MerchantFeatures.from_columns(TWO))
    norms = q.norms.values
    assert norms["rating"] == pytest.approx(192 / 40)  # 4.8: 0.2 from the ideal 5
    assert norms["on_time_rate"] == pytest.approx(385 / 390)
    # rating: (45 + 20 * 4.8) / (10 + 20) = 4.7, 0.3 from 5 = 1.5 platform gaps -> 3.4091
    assert q.value["rating"][0] == pytest.approx(4.7)
    rating = sub(0.3 / 0.2)
    assert rating == pytest.approx(5 * 1.5 / 2.2)
    # quality refunds: (2 + 200 * 0.005) / (100 + 200) = 0.01, twice the platform's 0.005
    assert q.value["quality_refund_rate"][0] == pytest.approx(0.01)
    quality_sub = sub(2.0)
    on_time_value = (85 + 50 * 385 / 390) / 140
    on_time = sub((1 - on_time_value) / (1 - 385 / 390))
    door = sub((1 - (60 + 50 * 0.875) / 150) / (1 - 0.875))
    complaint = sub(2.0)  # (1 + 200 * 0.0025) / 300 = 0.005, twice the platform's 0.0025
    response = sub(1.0)  # (20 + 5 * 10) / 7 = 10 hours, the platform's: 4.5455
    assert response == pytest.approx(50 / 11)
    expected = (0.30 * rating + 0.25 * quality_sub + 0.15 * on_time + 0.05 * door
                + 0.15 * complaint + 0.10 * response)  # fmt: skip
    assert q.score[0] == pytest.approx(expected)
    lines = {c.name: c for c in q.explain(q.index_of("m1"))}
    assert lines["door_delivery_rate"].sub_score == pytest.approx(door)
    assert lines["response_hours"].n == 2
    # m2 has no decided refund: its response time is the platform's
    assert q.value["response_hours"][1] == pytest.approx(10.0)
    # m2: no quality refund or complaint at all, 300 reviews at 4.9 -> near the top
    assert q.score[1] > 4.5 > q.score[0]


def test_platform_average_scores_4_55_and_gaps_are_relative():
    avg = MerchantFeatures.from_columns({"merchant_id": ["new"]})
    q = quality(avg, platform_norms(MerchantFeatures.from_columns(TWO)))
    assert q.score[0] == pytest.approx(50 / 11)  # every component at gap 1
    best = next(c for c in COMPONENTS if c.name == "on_time_rate")
    # 80% of the platform's distance from the ideal or closer earns 5; 3 times it earns 0
    assert best.sub_score(np.array([0.93, 0.91, 0.70, 0.60]), 0.90).tolist() == pytest.approx(
        [5.0, sub(0.9), 0.0, 0.0]
    )


def test_component_without_platform_data_is_left_out_and_weights_renormalised():
    cols = {k: v for k, v in TWO.items() if k not in {"delivered", "on_time"}}
    q = quality(MerchantFeatures.from_columns(cols))
    assert q.weight["on_time_rate"] == 0.0
    assert np.isnan(q.sub_score["on_time_rate"]).all()
    assert sum(q.weight.values()) == pytest.approx(1.0)
    assert q.weight["rating"] == pytest.approx(0.30 / 0.85)
    row = q.to_rows()[0]
    assert "on_time_rate_score" not in row and 0 <= row["score"] <= 5


def test_merchant_without_data_gets_the_platform_values():
    features = MerchantFeatures.from_columns(TWO)
    norms = platform_norms(features)
    empty = MerchantFeatures.from_columns({"merchant_id": ["new"]})
    q = quality(empty, norms)
    for c in COMPONENTS:
        assert q.value[c.name][0] == pytest.approx(norms.values[c.name])


def test_precomputed_norms_give_the_batch_result():
    features = MerchantFeatures.from_columns(TWO)
    batch = quality(features)
    single = MerchantFeatures.from_columns({k: v[:1] for k, v in TWO.items()})
    assert quality(single, platform_norms(features)).score[0] == pytest.approx(batch.score[0])
    with pytest.raises(NotFound):
        batch.index_of("nope")


def test_invalid_features_and_no_data_at_all():
    with pytest.raises(InvalidInput, match="door"):
        MerchantFeatures.from_columns({"merchant_id": ["m"], "door": [-1]})
    with pytest.raises(InvalidInput, match="no component"):
        quality(MerchantFeatures.from_columns({"merchant_id": ["m"]}))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 50), st.integers(1, 30), st.floats(1, 5))
def test_more_quality_refunds_never_raise_the_score(refunds, extra, rating):
    cols = {k: list(v) for k, v in TWO.items()}
    cols["merchant_id"] = ["a", "b", "m2"]
    for k in TWO:
        if k != "merchant_id":
            cols[k] = [TWO[k][0], TWO[k][0], TWO[k][1]]
    cols["quality_refunds"] = [refunds, min(refunds + extra, 100), 0]
    cols["rating_sum"] = [rating * 10, rating * 10, 147]
    f = MerchantFeatures.from_columns(cols)
    q = quality(f, platform_norms(MerchantFeatures.from_columns(TWO)))
    assert 0 <= q.score[1] <= q.score[0] <= 5
