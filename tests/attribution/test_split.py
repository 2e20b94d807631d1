"""The bridge's arithmetic: parts close exactly on every input; each estimator by hand."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tianping.attribution.split import (
    Estimate,
    close,
    days_effect,
    event_effects,
    holdout_effect,
    market_effect,
    ordinary_day,
    round_minor,
)
from tianping.errors import InvalidInput

MINOR = st.integers(min_value=-(10**15), max_value=10**15)
AMOUNT = st.floats(min_value=-1e14, max_value=1e14, allow_nan=False, allow_infinity=False)
ESTIMATES = st.lists(
    st.builds(
        Estimate,
        kind=st.sampled_from(["calendar", "market", "experiment", "policy"]),
        label=st.text(max_size=8),
        amount=AMOUNT,
    ),  # fmt: skip
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(before=MINOR, after=MINOR, estimates=ESTIMATES)
def test_the_parts_sum_to_the_change_exactly(before, after, estimates):
    parts = close(before, after, estimates)
    assert all(isinstance(p.amount_minor, int) for p in parts)
    assert sum(p.amount_minor for p in parts) == after - before
    assert parts[-1].kind == "residual" and len(parts) == len(estimates) + 1
    for p, e in zip(parts, estimates, strict=False):
        assert abs(p.amount_minor - e.amount) <= 0.5 + 1e-6 * abs(e.amount)  # nearest unit


@settings(max_examples=300, deadline=None)
@given(x=st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_rounding_is_to_the_nearest_unit_and_symmetric(x):
    r = round_minor(x)
    assert abs(r - x) <= 0.5
    assert round_minor(-x) == -r


def test_halves_go_away_from_zero_and_non_numbers_are_refused():
    assert [round_minor(v) for v in (0.5, 1.5, 2.5, -0.5, -1.5)] == [1, 2, 3, -1, -2]
    with pytest.raises(InvalidInput, match="finite"):
        round_minor(math.nan)
    with pytest.raises(InvalidInput, match="finite"):
        close(0, 1, [Estimate("market", "market", math.inf)])


def test_days_and_market_by_hand():
    # April 30 days of 3,000 with an event lift of 600: an ordinary day is 80
    r0 = ordinary_day(3_000, 30, 600)
    assert r0 == 80
    assert days_effect(r0, 30, 31) == 80
    assert market_effect(r0, 31, 1.05) == pytest.approx(80 * 31 * 0.05)
    with pytest.raises(InvalidInput, match="market ratio must be positive"):
        market_effect(r0, 31, 0)


def test_event_lifts_are_the_excess_over_ordinary_days():
    daily = [100, 100, 400, 250, 100, 100]
    lifts = event_effects(daily, {"a": [0, 0, 1, 1, 0, 0], "b": [0, 0, 0, 1, 0, 0]})
    # ordinary day 100; day 3 (+300) is a's alone; day 4 (+150) is shared by a and b
    assert lifts == {"a": 375.0, "b": 75.0}
    assert event_effects(daily, {}) == {}
    assert event_effects([5, 6], {"a": [1, 1]}) is None  # no ordinary day to compare with
    with pytest.raises(InvalidInput, match="event a: 2 days against 3"):
        event_effects([1, 2, 3], {"a": [1, 0]})


def test_the_holdout_gap_by_hand():
    # 10 % of units bought 100; the other 90 % would have bought 900 at that rate, bought 1,100
    assert holdout_effect(1_100, 100, 0.1) == pytest.approx(200)
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        holdout_effect(1, 1, 0)
