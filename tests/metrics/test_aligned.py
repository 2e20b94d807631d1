"""Aligned windows: the ratio, its interval by hand, and its coverage on paired festival days."""

import math

import numpy as np
import pytest
from scipy import stats

from tianping.errors import InvalidInput
from tianping.metrics.aligned import compare_windows


def test_the_ratio_and_its_interval_by_hand():
    x = np.array([100.0, 120, 300, 90])
    y = np.array([115.0, 126, 345, 99])
    c = compare_windows(x.astype(int), y.astype(int), alpha=0.1)
    r = y.sum() / x.sum()
    var = 4 / 3 * ((y - r * x) ** 2).sum() / x.sum() ** 2
    half = stats.t.ppf(0.95, 3) * math.sqrt(var) / r
    assert c.ratio == pytest.approx(r)
    assert c.ratio_interval == pytest.approx((r * math.exp(-half), r * math.exp(half)))
    assert (c.before_minor, c.after_minor, c.change_minor, c.days) == (610, 685, 75, 4)
    lo, hi = c.change_interval
    assert lo == pytest.approx(610 * (c.ratio_interval[0] - 1))
    assert hi == pytest.approx(610 * (c.ratio_interval[1] - 1))


def test_the_interval_covers_the_true_ratio_95_percent_of_the_time():
    # a festival shape (ramp, peak, hangover) in both years, this year 8 % up, daily noise
    rng = np.random.default_rng(7)
    shape = np.r_[np.linspace(1.1, 1.6, 10), 3.0, 0.8, 0.8, 0.8] * 1_000_000
    covered = 0
    reps = 2000
    for _ in range(reps):
        x = rng.gamma(100, shape / 100)
        y = rng.gamma(100, 1.08 * shape / 100)
        lo, hi = compare_windows(x.round(), y.round()).ratio_interval
        covered += lo <= 1.08 <= hi
    assert 0.93 <= covered / reps <= 0.97


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        ([1, 2, 3], [1, 2], "aligned windows need the same days: 3 against 2"),
        ([5], [6], "at least two days"),
        ([0, 0], [1, 2], "last year's window has no sales"),
        ([1, 2], [0, 0], "this year's window has no sales"),
    ],
)
def test_bad_windows_are_named(before, after, message):
    with pytest.raises(InvalidInput, match=message):
        compare_windows(before, after)
