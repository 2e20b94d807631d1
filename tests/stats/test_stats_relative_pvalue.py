"""The relative p-value: delta method as GrowthBook's gbstats computes it, checked by hand with
numpy/scipy and against gbstats' published numbers; it agrees with the relative interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from tianping.stats import AnalysisConfig, ArmStats, analyze, compare

# The case of the issue: a noisy control against a nearly constant treatment.
ISSUE_CONTROL = ArmStats("control", n=1000, sum=10_000, sum_sq=3.6e6)
ISSUE_TREATMENT = ArmStats("treatment", n=1000, sum=7_000, sum_sq=5e4)


def _by_hand(control: ArmStats, treatment: ArmStats) -> dict[str, float]:
    """The delta method written out from the raw sums (GrowthBook gbstats' TTest formulas:
    packages/stats/gbstats/frequentist/tests.py, ``variance``, ``point_estimate``, ``dof``)."""
    out = {}
    for key, arm in (("c", control), ("t", treatment)):
        values = np.array([arm.sum, arm.sum_sq], dtype=float)
        mean = values[0] / arm.n
        out[f"m_{key}"], out[f"v_{key}"] = mean, (values[1] - arm.n * mean**2) / (arm.n - 1)
        out[f"n_{key}"] = arm.n
    mc, mt, vc, vt, nc, nt = (out[k] for k in ("m_c", "m_t", "v_c", "v_t", "n_c", "n_t"))
    rel = (mt - mc) / mc
    var = vt / (mc**2 * nt) + vc * mt**2 / (mc**4 * nc)
    dof = (vt / nt + vc / nc) ** 2 / (vt**2 / (nt**2 * (nt - 1)) + vc**2 / (nc**2 * (nc - 1)))
    half = stats.t.ppf(0.975, dof) * math.sqrt(var)
    return {
        "rel": rel,
        "p": 2 * (1 - stats.t.cdf(abs(rel) / math.sqrt(var), dof)),
        "lower": rel - half,
        "upper": rel + half,
    }


def test_issue_case_absolute_and_relative_scales_are_both_reported():
    c = compare(ISSUE_CONTROL, ISSUE_TREATMENT, AnalysisConfig("mean"))
    absolute = stats.ttest_ind_from_stats(
        10, math.sqrt((3.6e6 - 1e5) / 999), 1000, 7, math.sqrt((5e4 - 4.9e4) / 999), 1000,
        equal_var=False,
    )  # fmt: skip
    assert c.pvalue == pytest.approx(absolute.pvalue, rel=1e-9)
    assert round(c.pvalue, 3) == 0.109
    hand = _by_hand(ISSUE_CONTROL, ISSUE_TREATMENT)
    assert c.rel_effect_size == pytest.approx(hand["rel"]) == pytest.approx(-0.3)
    assert c.rel_pvalue == pytest.approx(hand["p"], rel=1e-9)
    assert round(c.rel_pvalue, 4) == 0.0223
    assert (c.rel_effect_size_ci_lower, c.rel_effect_size_ci_upper) == pytest.approx(
        (hand["lower"], hand["upper"]), rel=1e-9
    )
    assert round(c.rel_effect_size_ci_lower, 3) == -0.557
    assert round(c.rel_effect_size_ci_upper, 3) == -0.043


def test_gbstats_published_two_sided_relative_pvalue():
    # gbstats packages/stats/tests/frequentist/test_tests.py, TestTwoSidedTTest: control mean
    # 0.41 sd 3.9 n 3407, treatment mean 0.70 sd 6.2 n 3461 -> p_value 0.06191 (relative),
    # uplift mean 0.70732, stddev 0.37879, ci [-0.03526, 1.44989].
    def arm(name, n, mean, sd):
        return ArmStats(name, n=n, sum=mean * n, sum_sq=sd**2 * (n - 1) + n * mean**2)

    c = compare(arm("a", 3407, 0.41, 3.9), arm("b", 3461, 0.70, 6.2), AnalysisConfig("mean"))
    assert c.rel_effect_size == pytest.approx(0.70732, abs=5e-6)
    assert c.rel_pvalue == pytest.approx(0.06191, abs=5e-6)
    assert (c.rel_effect_size_ci_lower, c.rel_effect_size_ci_upper) == pytest.approx(
        (-0.03526, 1.44989), abs=5e-6
    )


def test_relative_pvalues_are_adjusted_like_absolute_ones():
    arms = [ISSUE_CONTROL, ISSUE_TREATMENT, ArmStats("b", n=1000, sum=9_000, sum_sq=3.0e6)]
    a = analyze(arms, metric_type="mean", correction="holm")
    raw = sorted((c.rel_pvalue, c.treatment) for c in a.comparisons)
    adjusted = {c.treatment: c.rel_pvalue_adjusted for c in a.comparisons}
    assert adjusted[raw[0][1]] == pytest.approx(2 * raw[0][0])
    assert adjusted[raw[1][1]] == pytest.approx(max(2 * raw[0][0], raw[1][0]))


def test_no_relative_pvalue_without_a_relative_effect():
    zero = ArmStats("control", n=100, sum=0.0, sum_sq=0.0)
    c = compare(zero, ArmStats("t", n=100, sum=5.0, sum_sq=9.0), AnalysisConfig("mean"))
    assert c.rel_effect_size is None and c.rel_pvalue is None and c.pvalue < 1


arm_sums = st.tuples(st.integers(30, 3000), st.floats(0.5, 50), st.floats(0.05, 40)).map(
    lambda t: (t[0], t[1] * t[0], (t[2] ** 2) * (t[0] - 1) + t[0] * t[1] ** 2)
)


@settings(max_examples=150, deadline=None)
@given(arm_sums, arm_sums, st.sampled_from(["frequentist", "sequential"]),
       st.sampled_from(["delta", "log"]))  # fmt: skip
def test_relative_pvalue_below_alpha_exactly_when_the_interval_excludes_zero(a, b, method, scale):
    c = compare(ArmStats("c", *a), ArmStats("t", *b),
                AnalysisConfig("mean", method=method, relative_scale=scale))  # fmt: skip
    lo, hi = c.rel_effect_size_ci_lower, c.rel_effect_size_ci_upper
    margin = 1e-9 * max(1.0, abs(lo), abs(hi))
    if min(abs(lo), abs(hi)) < margin or abs(c.rel_pvalue - 0.05) < 1e-9:
        return  # on the boundary itself rounding decides
    assert (c.rel_pvalue < 0.05) == (lo > 0 or hi < 0)
