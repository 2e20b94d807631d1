"""Quantile metrics: Woodruff's interval against GrowthBook's p90 case and large-sample theory."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from tianping.errors import InvalidInput
from tianping.stats import QuantileArm, analyze, quantile_moments, woodruff_ranks
from tianping.stats.summary import analyze_summary

# gbstats' published p90 case (tests of its QuantileStatistic): n, quantile, lower, upper
GB_CONTROL = (11054, 7.157987489967789, 7.098780136176828, 7.217194843758751)
GB_TREATMENT = (10861, 7.694499927525767, 7.64180598628119, 7.747193868770344)


def _arm(name, values, level, units=None) -> QuantileArm:
    """What the warehouse query returns for one arm (``units``: each value's unit id)."""
    order = np.lexsort((np.zeros(len(values)) if units is None else units, values))
    v = np.asarray(values, float)[order]
    lo, k, hi = woodruff_ranks(v.size, level)
    extra = {}
    if units is not None:
        u = np.asarray(units)[order]
        below = np.bincount(u[:k], minlength=u.max() + 1).astype(float)
        events = np.bincount(u, minlength=u.max() + 1).astype(float)
        seen = events > 0
        below, events = below[seen], events[seen]
        extra = dict(units=int(seen.sum()), below_sum=below.sum(), below_sum_sq=below @ below,
                     events_sum_sq=events @ events, below_events_sum=below @ events)  # fmt: skip
    return QuantileArm(name, v.size, level, v[k - 1], v[lo - 1], v[hi - 1], **extra)


def test_growthbook_p90_case_by_gbstats_formulas():
    """Per arm gbstats' variance ``(n - 1) ((U - L) / (2 z))²`` over ``n``; the contrast is
    Welch's t with those moments, checked with scipy."""
    arms = [QuantileArm("control", c[0], 0.9, *c[1:]) for c in (GB_CONTROL,)] + [
        QuantileArm("treatment", GB_TREATMENT[0], 0.9, *GB_TREATMENT[1:])
    ]
    c = analyze(arms, metric_type="quantile").comparisons[0]
    z = stats.norm.ppf(0.975)
    var = [(n - 1) * ((u - lo) / (2 * z)) ** 2 for n, _, lo, u in (GB_CONTROL, GB_TREATMENT)]
    ref = stats.ttest_ind_from_stats(
        GB_TREATMENT[1], math.sqrt(var[1]), GB_TREATMENT[0],
        GB_CONTROL[1], math.sqrt(var[0]), GB_CONTROL[0], equal_var=False,
    )  # fmt: skip
    assert c.effect_size == pytest.approx(GB_TREATMENT[1] - GB_CONTROL[1], rel=1e-12)
    assert c.pvalue == pytest.approx(ref.pvalue, rel=1e-6)
    assert c.se == pytest.approx(0.0404377, rel=1e-5)
    assert c.rel_effect_size == pytest.approx(0.0749530, rel=1e-5)
    assert (c.rel_effect_size_ci_lower, c.rel_effect_size_ci_upper) == pytest.approx(
        (0.0634094, 0.0864965), rel=1e-5
    )


def test_woodruff_standard_error_matches_the_asymptotic_one():
    """For n = 200,000 normal values the SE of the median and p90 is close to
    ``sqrt(ν(1-ν)) / (f(q) sqrt(n))``."""
    rng = np.random.default_rng(3)
    values = rng.normal(10, 2, 200_000)
    for level in (0.5, 0.9):
        m = quantile_moments(_arm("a", values, level))
        q = stats.norm.ppf(level, 10, 2)
        theory = math.sqrt(level * (1 - level)) / (stats.norm.pdf(q, 10, 2) * math.sqrt(200_000))
        assert math.sqrt(m.se2) == pytest.approx(theory, rel=0.05)
        assert m.mean == pytest.approx(q, abs=4 * theory)


def test_clustering_widens_the_interval_and_one_event_per_unit_does_not():
    rng = np.random.default_rng(5)
    single = rng.lognormal(4, 0.6, 20_000)
    flat = quantile_moments(_arm("a", single, 0.9))
    one_each = quantile_moments(_arm("a", single, 0.9, units=np.arange(20_000)))
    assert one_each.se2 == pytest.approx(flat.se2, rel=0.02)
    buyers = rng.integers(0, 2_000, 20_000)
    taste = rng.lognormal(0, 0.8, 2_000)[buyers]  # a buyer's orders share a price level
    clustered = quantile_moments(_arm("a", single * taste, 0.9, units=buyers))
    naive = quantile_moments(_arm("a", single * taste, 0.9))
    assert clustered.se2 > 1.5 * naive.se2


def test_aa_rejections_and_coverage_with_clustered_orders():
    """400 A/A experiments of buyers with several orders each: the clustered interval rejects
    about alpha of the time (the full 1,000-run calibration is in bench/calibration.py)."""
    rng = np.random.default_rng(11)
    rejected = 0
    runs = 400
    for _ in range(runs):
        arms = []
        for name in ("control", "treatment"):
            orders = rng.poisson(2.0, 1_500) + 1
            buyer = np.repeat(np.arange(1_500), orders)
            level = rng.lognormal(0, 0.7, 1_500)[buyer]
            arms.append(_arm(name, rng.lognormal(4, 0.5, buyer.size) * level, 0.5, buyer))
        rejected += analyze(arms, metric_type="quantile").comparisons[0].pvalue < 0.05
    low, high = stats.binomtest(rejected, runs).proportion_ci(0.99)
    assert low <= 0.05 <= high, rejected / runs


def test_summary_json_for_a_quantile_metric():
    doc = {
        "metric_type": "quantile",
        "quantile": 0.9,
        "arms": [
            {"name": "control", "n": GB_CONTROL[0], "quantile": GB_CONTROL[1],
             "quantile_lower": GB_CONTROL[2], "quantile_upper": GB_CONTROL[3]},
            {"name": "treatment", "n": GB_TREATMENT[0], "quantile": GB_TREATMENT[1],
             "quantile_lower": GB_TREATMENT[2], "quantile_upper": GB_TREATMENT[3]},
        ],
    }  # fmt: skip
    out = analyze_summary(doc)
    assert out["metric_type"] == "quantile"
    assert out["comparisons"][0]["rel_effect_size"] == pytest.approx(0.0749530, rel=1e-5)
    assert out["arms"][0]["mean"] == GB_CONTROL[1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("quantile"), "quantile .*must be a number in \\(0, 1\\)"),
        (lambda d: d.update(quantile=1.5), "must be a number in \\(0, 1\\)"),
        (lambda d: d["arms"][1].pop("quantile_upper"), "arms\\[1\\].*'quantile_upper' is required"),
        (lambda d: d["arms"][1].update(n=3), "3 values are too few"),
        (lambda d: d["arms"][1].update(quantile_lower=99), "quantile_lower <= quantile"),
        (lambda d: d["arms"][1].update(sum=3), "unknown field 'sum'"),
        (lambda d: d["arms"][1].update(units=100), "clustered quantiles need all of"),
        (lambda d: d.update(cuped=True), "not adjusted for covariates"),
    ],
)
def test_bad_quantile_input_names_what_is_wrong(change, message):
    doc = {
        "metric_type": "quantile",
        "quantile": 0.5,
        "arms": [{"name": "control", "n": 100, "quantile": 5, "quantile_lower": 4,
                  "quantile_upper": 6},
                 {"name": "t", "n": 100, "quantile": 5, "quantile_lower": 4,
                  "quantile_upper": 6}],
    }  # fmt: skip
    change(doc)
    with pytest.raises(InvalidInput, match=message):
        analyze_summary(doc)


def test_woodruff_ranks_stay_inside_the_sample():
    for n in (30, 100, 10_001):
        for level in (0.1, 0.5, 0.9, 0.99):
            lo, k, hi = woodruff_ranks(n, level)
            assert 1 <= lo <= k <= hi <= n
