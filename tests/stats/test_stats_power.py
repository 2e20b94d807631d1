"""Power, sample size and MDE against statsmodels.stats.power and .proportion."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import (
    power_proportions_2indep,
    samplesize_proportions_2indep_onetail,
)

from tianping.errors import InvalidInput
from tianping.stats import minimum_detectable_effect, power_of, runtime_days, sample_size

SM_ALT = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}


@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_mean_power_matches_normal_ind_power(alternative, ratio):
    ours = power_of("mean", 20.0, 0.6, 900, sd=7.0, ratio=ratio, alternative=alternative)
    ref = NormalIndPower().power(0.6 / 7.0, 900, 0.05, ratio=ratio, alternative=SM_ALT[alternative])
    assert ours == pytest.approx(ref, rel=1e-10)


def test_mean_sample_size_matches_normal_ind_power():
    plan = sample_size("mean", 20.0, 0.05, relative=True, sd=7.0, power=0.9, alpha=0.01)
    ref = NormalIndPower().solve_power(1.0 / 7.0, power=0.9, alpha=0.01, ratio=1.0)
    assert plan.n_control == math.ceil(ref)
    assert plan.mde == pytest.approx(1.0) and plan.rel_mde == pytest.approx(0.05)


def test_t_distribution_matches_ttest_ind_power():
    ours = power_of("mean", 0.0, 0.5, 30, sd=1.0, ratio=1.5, distribution="t")
    ref = TTestIndPower().power(0.5, 30, 0.05, ratio=1.5)
    assert ours == pytest.approx(ref, rel=1e-8)
    plan = sample_size("mean", 0.0, 0.5, sd=1.0, distribution="t")
    assert plan.n_control == math.ceil(TTestIndPower().solve_power(0.5, power=0.8, alpha=0.05))


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_proportion_power_matches_statsmodels(alternative):
    p_c, delta, n_c, ratio = 0.1, 0.015, 5000, 1.5
    p_t = p_c - delta if alternative == "less" else p_c + delta
    ours = power_of("proportion", p_c, delta, n_c, ratio=ratio, alternative=alternative)
    # statsmodels' sample 1 is our control (nobs1), prop2 our treatment's rate
    ref = power_proportions_2indep(
        p_c - p_t,
        p_t,
        n_c,
        ratio=ratio,
        alternative=SM_ALT[{"greater": "less", "less": "greater"}.get(alternative, alternative)],
        return_results=False,
    )
    assert ours == pytest.approx(ref, rel=1e-9)


def test_proportion_sample_size_matches_statsmodels():
    plan = sample_size("proportion", 0.1, 0.02, alpha=0.05, power=0.8, daily_units=1000)
    ref = samplesize_proportions_2indep_onetail(0.1 - 0.12, 0.12, 0.8)
    assert plan.n_control == math.ceil(ref)  # the far tail is negligible here
    assert plan.n_total == 2 * plan.n_control and plan.days == math.ceil(plan.n_total / 1000)


def test_relative_mde_and_multiple_arms():
    plan = sample_size("proportion", 0.1, 0.2, relative=True, arms=3, ratio=0.5)
    assert plan.mde == pytest.approx(0.02)
    assert plan.n_treatment == math.ceil(0.5 * plan.n_control)
    assert plan.n_total == plan.n_control + 2 * plan.n_treatment


@pytest.mark.parametrize("metric_type", ["mean", "proportion"])
def test_mde_inverts_sample_size(metric_type):
    plan = minimum_detectable_effect(metric_type, 0.2, 3000, sd=1.3, power=0.85)
    assert power_of(metric_type, 0.2, plan.mde, 3000, sd=1.3) == pytest.approx(0.85, abs=1e-8)
    back = sample_size(metric_type, 0.2, plan.mde, sd=1.3, power=0.85)
    assert back.n_control in (3000, 3001)


def test_runtime_and_errors():
    assert runtime_days(7682, 1000) == 8
    assert runtime_days(3000, 1000) == 3
    with pytest.raises(InvalidInput, match="sd"):
        sample_size("mean", 10.0, 1.0)
    with pytest.raises(InvalidInput, match="baseline"):
        sample_size("proportion", 1.5, 0.1)
    with pytest.raises(InvalidInput, match="outside"):
        sample_size("proportion", 0.95, 0.1)
    with pytest.raises(InvalidInput, match="ratio"):
        power_of("mean", 1.0, 0.1, 100, sd=1.0, ratio=0)
