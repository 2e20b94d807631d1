"""GMV decomposition: contributions sum to the change; LMDI matches its closed form."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tianping.metrics.explain import Snapshot, decompose, rank_movers


def test_lmdi_hand_computed():
    # 5 buyers x 2 orders x 10 yuan = 100 -> 8 buyers x 2.5 orders x 12 yuan = 240
    d = decompose(Snapshot(100.0, 10, 5), Snapshot(240.0, 20, 8))
    weight = (240 - 100) / math.log(240 / 100)
    assert d.method == "lmdi"
    assert d.contributions["buyers"] == pytest.approx(weight * math.log(8 / 5))
    assert d.contributions["orders_per_buyer"] == pytest.approx(weight * math.log(2.5 / 2))
    assert d.contributions["aov"] == pytest.approx(weight * math.log(12 / 10))
    assert sum(d.contributions.values()) == pytest.approx(140.0)


def test_shapley_when_a_period_is_empty():
    d = decompose(Snapshot(0.0, 0, 0), Snapshot(60.0, 6, 3))
    assert d.method == "shapley"
    assert sum(d.contributions.values()) == pytest.approx(60.0)


@given(
    st.floats(1, 1e7),
    st.integers(1, 10**5),
    st.integers(1, 10**4),
    st.floats(1, 1e7),
    st.integers(1, 10**5),
    st.integers(1, 10**4),
)
def test_contributions_always_sum_to_the_change(g0, o0, b0, g1, o1, b1):
    d = decompose(Snapshot(g0, o0, b0), Snapshot(g1, o1, b1))
    assert sum(d.contributions.values()) == pytest.approx(g1 - g0, rel=1e-7, abs=1e-6)


def test_movers_ranked_by_absolute_change():
    movers = rank_movers({"a": 100, "b": 50, "c": 10}, {"a": 90, "b": 80, "d": 5})
    assert [(m.value, m.change) for m in movers] == [("b", 30), ("a", -10), ("c", -10), ("d", 5)]
    assert sum(m.share_of_change for m in movers) == pytest.approx(1.0)
