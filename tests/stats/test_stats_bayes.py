"""Bayesian comparison: gbstats' published numbers and Monte Carlo checks."""

from __future__ import annotations

import numpy as np
import pytest

from tianping.stats import AnalysisConfig, ArmStats, compare


def _bayes(a, b, **kw):
    return compare(
        a, b, AnalysisConfig(metric_type=kw.pop("metric_type", "mean"), method="bayesian", **kw)
    )


# GrowthBook gbstats packages/stats/tests/bayesian/test_tests.py (EffectBayesianABTest).
def test_gbstats_binomial_flat_prior():
    c = _bayes(
        ArmStats("control", 100, 49), ArmStats("treatment", 100, 51), metric_type="proportion"
    )
    assert c.rel_effect_size == pytest.approx(0.04082, abs=5e-6)
    assert (c.rel_effect_size_ci_lower, c.rel_effect_size_ci_upper) == pytest.approx(
        (-0.24779, 0.32943), abs=5e-6
    )
    assert c.chance_to_win == pytest.approx(0.60918, abs=5e-6)
    assert (c.risk_control, c.risk) == pytest.approx((0.0814, 0.04058), abs=5e-6)


GA = ArmStats("control", n=10, sum=100, sum_sq=1002.25)
GB = ArmStats("treatment", n=10, sum=105, sum_sq=1111.5)


def test_gbstats_gaussian_flat_prior():
    c = _bayes(GA, GB)
    assert c.rel_effect_size == pytest.approx(0.05, abs=5e-6)
    assert (c.rel_effect_size_ci_lower, c.rel_effect_size_ci_upper) == pytest.approx(
        (-0.02, 0.12), abs=5e-6
    )
    assert c.chance_to_win == pytest.approx(0.91923, abs=5e-6)
    assert (c.risk_control, c.risk) == pytest.approx((0.05131, 0.00131), abs=5e-6)


def test_gbstats_gaussian_informative_prior():
    c = _bayes(GA, GB, prior_mean=0.1, prior_variance=0.1)
    assert c.rel_effect_size == pytest.approx(0.05063, abs=5e-6)
    assert (c.rel_effect_size_ci_lower, c.rel_effect_size_ci_upper) == pytest.approx(
        (-0.01893, 0.12019), abs=5e-6
    )
    assert c.chance_to_win == pytest.approx(0.92315, abs=5e-6)
    assert (c.risk_control, c.risk) == pytest.approx((0.05186, 0.00123), abs=5e-6)


def test_lower_is_better_flips_chance_and_risk():
    up = _bayes(GA, GB)
    down = _bayes(GA, GB, alternative="less")
    assert down.chance_to_win == pytest.approx(1 - up.chance_to_win)
    assert (down.risk, down.risk_control) == pytest.approx((up.risk_control, up.risk))


def test_normal_model_against_monte_carlo():
    rng = np.random.default_rng(3)
    c = _bayes(
        ArmStats("control", 2000, 2000 * 5.0, 2000 * (25 + 9) - 9),
        ArmStats("treatment", 2100, 2100 * 5.2, 2100 * (5.2**2 + 10) - 10),
    )
    sd = (c.rel_effect_size_ci_upper - c.rel_effect_size_ci_lower) / (2 * 1.959963984540054)
    draws = rng.normal(c.rel_effect_size, sd, 2_000_000)
    assert c.chance_to_win == pytest.approx((draws > 0).mean(), abs=2e-3)
    assert c.risk == pytest.approx(np.maximum(-draws, 0).mean(), rel=0.02)
    assert c.risk_control == pytest.approx(np.maximum(draws, 0).mean(), rel=0.01)


def test_beta_model_against_monte_carlo():
    rng = np.random.default_rng(11)
    control, treatment = ArmStats("control", 400, 36), ArmStats("treatment", 410, 47)
    c = _bayes(control, treatment, metric_type="proportion", bayesian_model="beta")
    pc = rng.beta(1 + 36, 1 + 364, 1_000_000)
    pt = rng.beta(1 + 47, 1 + 363, 1_000_000)
    lift = pt / pc - 1
    assert c.chance_to_win == pytest.approx((pt > pc).mean(), abs=2e-3)
    assert c.risk == pytest.approx((np.maximum(pc - pt, 0) / pc).mean(), rel=0.02)
    assert c.risk_control == pytest.approx((np.maximum(pt - pc, 0) / pc).mean(), rel=0.01)
    assert (c.rel_effect_size_ci_lower, c.rel_effect_size_ci_upper) == pytest.approx(
        tuple(np.quantile(lift, [0.025, 0.975])), abs=4e-3
    )
    assert (c.effect_size_ci_lower, c.effect_size_ci_upper) == pytest.approx(
        tuple(np.quantile(pt - pc, [0.025, 0.975])), abs=5e-4
    )


def test_beta_model_near_gbstats_lognormal_reference():
    # Older gbstats (BinomialBayesianABTest, Beta(1,1) prior) approximated the lift's
    # posterior by a log-normal: chance_to_win 0.61052. The exact Beta computation must land
    # within that approximation's error.
    c = _bayes(
        ArmStats("control", 100, 49),
        ArmStats("treatment", 100, 51),
        metric_type="proportion",
        bayesian_model="beta",
    )
    assert c.chance_to_win == pytest.approx(0.61052, abs=3e-3)


def test_beta_model_with_no_successes_and_a_jeffreys_prior():
    from tianping.stats import beta_binomial_test

    c = beta_binomial_test(
        ArmStats("control", 50, 0), ArmStats("treatment", 50, 3), prior_alpha=0.5, prior_beta=0.5
    )
    rng = np.random.default_rng(5)
    pc, pt = rng.beta(0.5, 50.5, 1_000_000), rng.beta(3.5, 47.5, 1_000_000)
    assert c.chance_to_win == pytest.approx((pt > pc).mean(), abs=2e-3)
    assert c.effect_size_ci_upper == pytest.approx(np.quantile(pt - pc, 0.975), abs=1e-3)
