"""Welch t test, delta-method lifts: against scipy, statsmodels and gbstats' published numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

from tianping.stats import AnalysisConfig, ArmStats, compare

# GrowthBook gbstats, packages/stats/tests/frequentist/test_tests.py (TestTwoSidedTTest,
# TestOneSided*TTest): control n=3407 (or 3000), treatment n=3461.
GB_A = ArmStats("control", n=3407, sum=1396.87, sum_sq=52377.9767)
GB_B = ArmStats("treatment", n=3461, sum=2422.7, sum_sq=134698.29)
GB_A3000 = ArmStats("control", n=3000, sum=1396.87, sum_sq=52377.9767)


def _cmp(a, b, **kw):
    return compare(a, b, AnalysisConfig(metric_type=kw.pop("metric_type", "mean"), **kw))


def test_gbstats_two_sided_absolute_and_relative():
    c = _cmp(GB_A, GB_B)
    assert c.effect_size == pytest.approx(0.29)
    assert (c.effect_size_ci_lower, c.effect_size_ci_upper) == pytest.approx(
        (0.04538, 0.53462), abs=5e-6
    )
    assert c.pvalue == pytest.approx(0.02016, abs=5e-6)
    assert c.se == pytest.approx(0.12478, abs=5e-6)
    assert c.rel_effect_size == pytest.approx(0.70732, abs=5e-6)
    assert (c.rel_effect_size_ci_lower, c.rel_effect_size_ci_upper) == pytest.approx(
        (-0.03526, 1.44989), abs=5e-6
    )


def test_gbstats_binomial_relative_interval():
    c = _cmp(ArmStats("control", 28, 14), ArmStats("treatment", 30, 16), metric_type="proportion")
    assert c.rel_effect_size == pytest.approx((16 / 30 - 0.5) / 0.5)
    assert (c.rel_effect_size_ci_lower, c.rel_effect_size_ci_upper) == pytest.approx(
        (-0.47767, 0.61101), abs=5e-6
    )


@pytest.mark.parametrize(
    ("alternative", "abs_bound", "rel_bound", "pvalue"),
    [
        ("greater", 0.020791480063255735, -0.045136675850396046, 0.03554272489873023),
        ("less", 0.44796185327007765, 1.0518588475628676, 0.9644572751012698),
    ],
)
def test_gbstats_one_sided(alternative, abs_bound, rel_bound, pvalue):
    c = _cmp(GB_A3000, GB_B, alternative=alternative)
    assert c.effect_size == pytest.approx(0.23437666666666668)
    if alternative == "greater":
        assert c.effect_size_ci_upper == math.inf and c.rel_effect_size_ci_upper == math.inf
        assert c.effect_size_ci_lower == pytest.approx(abs_bound, abs=1e-9)
        assert c.rel_effect_size_ci_lower == pytest.approx(rel_bound, abs=1e-9)
    else:
        assert c.effect_size_ci_lower == -math.inf
        assert c.effect_size_ci_upper == pytest.approx(abs_bound, abs=1e-9)
        assert c.rel_effect_size_ci_upper == pytest.approx(rel_bound, abs=1e-9)
    assert c.pvalue == pytest.approx(pvalue, abs=1e-9)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_matches_statsmodels_on_unit_level_data(rng, make_arm, alternative):
    y_c = rng.lognormal(1.0, 1.0, 700)
    y_t = rng.lognormal(1.05, 1.2, 900)
    c = _cmp(make_arm("control", y_c), make_arm("t", y_t), alternative=alternative, alpha=0.1)
    sm_alt = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}[alternative]
    _, p, _ = ttest_ind(y_t, y_c, usevar="unequal", alternative=sm_alt)
    lo, hi = CompareMeans(DescrStatsW(y_t), DescrStatsW(y_c)).tconfint_diff(
        alpha=0.1, usevar="unequal", alternative=sm_alt
    )
    assert c.pvalue == pytest.approx(p, rel=1e-9)
    assert c.effect_size_ci_lower == pytest.approx(lo, rel=1e-9)
    assert c.effect_size_ci_upper == pytest.approx(hi, rel=1e-9)


def test_log_scale_lift_matches_tea_tasting(rng, make_arm):
    tt = pytest.importorskip("tea_tasting")
    pd = pytest.importorskip("pandas")
    y = np.concatenate([rng.gamma(2.0, 3.0, 800), rng.gamma(2.2, 3.0, 750)])
    variant = np.repeat([0, 1], [800, 750])
    ref = tt.Experiment(m=tt.Mean("y")).analyze(
        pd.DataFrame({"variant": variant, "y": y}), control=0
    )["m"]
    c = _cmp(make_arm("control", y[:800]), make_arm("t", y[800:]), relative_scale="log")
    for field in (
        "effect_size",
        "effect_size_ci_lower",
        "effect_size_ci_upper",
        "pvalue",
        "rel_effect_size",
        "rel_effect_size_ci_lower",
        "rel_effect_size_ci_upper",
    ):
        assert getattr(c, field) == pytest.approx(getattr(ref, field), rel=1e-9), field


moments = st.tuples(
    st.integers(2, 5000),
    st.floats(-100, 100, allow_nan=False),
    st.floats(0.01, 100, allow_nan=False),
)


def _arm(name, n, mean, sd):
    return ArmStats(name, n=n, sum=mean * n, sum_sq=(sd * sd * (n - 1) + mean * mean * n))


@settings(max_examples=150, deadline=None)
@given(moments, moments, st.sampled_from([0.01, 0.05, 0.2]))
def test_properties_against_scipy(mc, mt, alpha):
    a, b = _arm("control", *mc), _arm("t", *mt)
    c = _cmp(a, b, alpha=alpha)
    ref = stats.ttest_ind_from_stats(mt[1], mt[2], mt[0], mc[1], mc[2], mc[0], equal_var=False)
    assert c.pvalue == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12)
    assert 0.0 <= c.pvalue <= 1.0
    assert c.effect_size_ci_lower <= c.effect_size <= c.effect_size_ci_upper
    if c.rel_effect_size is not None:
        assert c.rel_effect_size_ci_lower <= c.rel_effect_size <= c.rel_effect_size_ci_upper
    # duality: significant exactly when the interval excludes zero (away from the edge)
    if abs(c.pvalue - alpha) > 1e-6:
        excludes = c.effect_size_ci_lower > 0 or c.effect_size_ci_upper < 0
        assert excludes == (c.pvalue < alpha)
    swapped = _cmp(_arm("control", *mt), _arm("t", *mc), alpha=alpha)
    assert swapped.effect_size == pytest.approx(-c.effect_size, abs=1e-9)
    assert swapped.effect_size_ci_lower == pytest.approx(-c.effect_size_ci_upper, abs=1e-9)
    assert swapped.pvalue == pytest.approx(c.pvalue, rel=1e-9, abs=1e-15)


def test_zero_variance_arms_are_degenerate_not_errors():
    same = _cmp(ArmStats("control", 100, 0), ArmStats("t", 100, 0), metric_type="proportion")
    assert same.pvalue == 1.0 and same.effect_size == 0.0
    assert same.rel_effect_size is None  # the control's rate is 0: no lift
    apart = _cmp(ArmStats("control", 100, 0), ArmStats("t", 100, 100), metric_type="proportion")
    assert apart.pvalue == 0.0
