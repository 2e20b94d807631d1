"""Sequential testing: gbstats' published numbers, duality, and peeking by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from tianping.stats import (
    AnalysisConfig,
    ArmStats,
    always_valid_path,
    compare,
    mixture_halfwidth,
    mixture_pvalue,
    mixture_rho2,
)

# GrowthBook gbstats packages/stats/tests/frequentist/test_tests.py (TestSequentialTTest,
# TestSequentialOneSided*TTest).
A = ArmStats("control", n=3000, sum=1396.87, sum_sq=52377.9767)
B = ArmStats("treatment", n=3461, sum=2422.7, sum_sq=134698.29)


def _seq(a, b, **kw):
    return compare(
        a, b, AnalysisConfig(metric_type=kw.pop("metric_type", "mean"), method="sequential", **kw)
    )


def test_gbstats_sequential_two_sided_mean():
    c = _seq(A, B, tuning_n=1000)
    assert c.rel_effect_size == pytest.approx(0.50336, abs=5e-6)
    assert (c.rel_effect_size_ci_lower, c.rel_effect_size_ci_upper) == pytest.approx(
        (-0.55844, 1.56516), abs=5e-6
    )
    assert c.pvalue == 1.0


def test_gbstats_sequential_two_sided_proportion():
    c = _seq(
        ArmStats("control", 3000, 1396), ArmStats("treatment", 3461, 2422), metric_type="proportion"
    )
    assert c.rel_effect_size == pytest.approx(0.50386, abs=5e-6)
    assert (c.rel_effect_size_ci_lower, c.rel_effect_size_ci_upper) == pytest.approx(
        (0.40098, 0.60675), abs=5e-6
    )
    assert c.pvalue == pytest.approx(0.0, abs=5e-6)


def test_gbstats_sequential_one_sided():
    greater = _seq(A, B, alternative="greater")
    assert greater.effect_size_ci_lower == pytest.approx(-0.12656844172804982, abs=1e-10)
    assert greater.rel_effect_size_ci_lower == pytest.approx(-0.42356454602790883, abs=1e-10)
    assert greater.effect_size_ci_upper == math.inf
    # gbstats finds this p-value by bisection (tolerance 1e-6 on the bound): 0.46316;
    # ours is the closed form, so they agree to the bisection's precision.
    assert greater.pvalue == pytest.approx(0.46316491943359384, abs=5e-4)
    less = _seq(A, B, alternative="less")
    assert less.effect_size_ci_upper == pytest.approx(0.5953217750613832, abs=1e-10)
    assert less.rel_effect_size_ci_upper == pytest.approx(1.4302867177403806, abs=1e-10)
    assert less.pvalue == 1.0  # the estimate is on the wrong side of "less"


@pytest.mark.parametrize("two_sided", [True, False])
def test_pvalue_is_the_alpha_at_which_the_sequence_touches_zero(two_sided):
    se, n, estimate = 0.13, 6461, 0.41
    rho2 = mixture_rho2(0.05, 5000, two_sided=two_sided)
    p = mixture_pvalue(estimate, se, n, rho2, "two-sided" if two_sided else "greater")
    assert 0 < p < 0.05
    half = mixture_halfwidth(se, n, p, rho2, two_sided=two_sided)
    assert half == pytest.approx(estimate, rel=1e-9)


def test_confidence_sequence_is_wider_than_the_fixed_interval():
    fixed = compare(A, B, AnalysisConfig(metric_type="mean"))
    seq = _seq(A, B)
    assert seq.effect_size_ci_lower < fixed.effect_size_ci_lower
    assert seq.effect_size_ci_upper > fixed.effect_size_ci_upper
    assert seq.pvalue >= fixed.pvalue


def test_tightest_near_the_tuning_sample_size():
    widths = {t: _seq(A, B, tuning_n=t) for t in (10, 6461, 100_000)}
    w = {t: c.effect_size_ci_upper - c.effect_size_ci_lower for t, c in widths.items()}
    assert w[6461] < w[10] and w[6461] < w[100_000]


def test_peeking_keeps_type_one_error_while_naive_peeking_does_not():
    rng = np.random.default_rng(7)
    sims, looks, per_look, alpha = 1000, 20, 100, 0.05
    y = rng.exponential(1.0, size=(sims, 2, looks, per_look))  # skewed, no true effect
    n = np.arange(1, looks + 1) * per_look
    s = y.sum(axis=3).cumsum(axis=2)
    ss = (y * y).sum(axis=3).cumsum(axis=2)
    mean = s / n
    var = (ss - s * s / n) / (n - 1)
    se2 = var / n
    estimate = mean[:, 1] - mean[:, 0]
    se = np.sqrt(se2[:, 0] + se2[:, 1])
    df = (se2[:, 0] + se2[:, 1]) ** 2 / (se2[:, 0] ** 2 / (n - 1) + se2[:, 1] ** 2 / (n - 1))
    naive = 2 * stats.t.sf(np.abs(estimate / se), df)
    seq = mixture_pvalue(estimate, se, 2 * n, mixture_rho2(alpha))
    naive_rate = (naive.min(axis=1) < alpha).mean()
    seq_rate = (np.array([always_valid_path(p)[-1] for p in seq]) < alpha).mean()
    assert naive_rate > 0.12  # peeking 20 times inflates a nominal 5%
    assert seq_rate <= alpha  # the always-valid p-value does not
    # a single look at the end is a plain 5% test
    assert abs((naive[:, -1] < alpha).mean() - alpha) < 0.025


def test_always_valid_path_is_a_running_minimum():
    assert always_valid_path([0.9, 0.2, 0.5, 0.1, 0.3]).tolist() == [0.9, 0.2, 0.2, 0.1, 0.1]
