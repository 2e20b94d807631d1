"""Post-stratification: against the fully interacted OLS (statsmodels) and by simulation."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from tianping.errors import InvalidInput
from tianping.stats import analyze, analyze_stratified


def _data(rng, n=6000):
    stratum = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    t = rng.integers(0, 2, n)
    y = np.array([5.0, 20.0, 60.0])[stratum] + rng.gamma(2, 3, n) * (1 + stratum) + 1.5 * t
    return stratum, t, y


def _strata(make_arm, stratum, t, y, d=None):
    out = {}
    for s in np.unique(stratum):
        sel = stratum == s
        out[f"s{s}"] = [
            make_arm(name, y[sel & (t == k)], None if d is None else d[sel & (t == k)])
            for k, name in ((0, "control"), (1, "treatment"))
        ]
    return out


def test_effect_and_se_equal_the_fully_interacted_ols(rng, make_arm):
    stratum, t, y = _data(rng)
    a = analyze_stratified(_strata(make_arm, stratum, t, y), metric_type="mean")
    c = a.comparisons[0]
    dummies = np.column_stack([stratum == s for s in (1, 2)]).astype(float)
    centred = dummies - dummies.mean(axis=0)
    design = sm.add_constant(np.column_stack([t, centred, t[:, None] * centred]))
    fit = sm.OLS(y, design).fit(cov_type="HC2")
    assert c.effect_size == pytest.approx(fit.params[1], rel=1e-10)
    assert c.se == pytest.approx(fit.bse[1], rel=1e-9)


def test_stratifying_on_a_predictive_attribute_shrinks_the_variance(rng, make_arm):
    stratum, t, y = _data(rng)
    plain = analyze(
        [make_arm("control", y[t == 0]), make_arm("treatment", y[t == 1])], metric_type="mean"
    ).comparisons[0]
    strat = analyze_stratified(_strata(make_arm, stratum, t, y), metric_type="mean")
    assert strat.comparisons[0].se ** 2 < 0.6 * plain.se**2


def test_aa_rejects_at_alpha_and_covers_the_truth(make_arm):
    """500 A/A runs (the 1,000-run calibration is in bench/calibration.py)."""
    rng = np.random.default_rng(17)
    runs, rejected = 500, 0
    for _ in range(runs):
        stratum, t, y = _data(rng, n=2000)
        y = y - 1.5 * t
        rejected += (
            analyze_stratified(_strata(make_arm, stratum, t, y), metric_type="mean")
            .comparisons[0]
            .pvalue
            < 0.05
        )
    assert 0.03 <= rejected / runs <= 0.07


def test_ratio_metric_and_multiple_arms(rng, make_arm):
    n = 4000
    stratum = rng.integers(0, 2, n)
    arm = rng.integers(0, 3, n)
    d = (rng.poisson(2 + 3 * stratum) + 1).astype(float)
    y = rng.binomial(d.astype(int), 0.1 + 0.1 * stratum).astype(float)
    strata = {
        f"s{s}": [
            make_arm(name, y[(stratum == s) & (arm == k)], d[(stratum == s) & (arm == k)])
            for k, name in enumerate(("control", "b", "c"))
        ]
        for s in (0, 1)
    }
    a = analyze_stratified(strata, metric_type="ratio", planned_weights=[1, 1, 1])
    assert [c.treatment for c in a.comparisons] == ["b", "c"]
    assert a.srm is not None and a.arms[0].n == int((arm == 0).sum())
    assert all(c.pvalue_adjusted >= c.pvalue for c in a.comparisons)


def test_bad_strata_are_named(make_arm):
    arms = [make_arm("control", [1.0, 2.0, 3.0]), make_arm("t", [2.0, 3.0, 4.0])]
    with pytest.raises(InvalidInput, match="at least 2 strata"):
        analyze_stratified({"a": arms}, metric_type="mean")
    other = [make_arm("control", [1.0, 2.0]), make_arm("x", [2.0, 3.0])]
    with pytest.raises(InvalidInput, match="stratum 'b' has arms"):
        analyze_stratified({"a": arms, "b": other}, metric_type="mean")
    tiny = [make_arm("control", [1.0]), make_arm("t", [2.0, 3.0])]
    with pytest.raises(InvalidInput, match="stratum 'b': arm 'control': n must be at least 2"):
        analyze_stratified({"a": arms, "b": tiny}, metric_type="mean")


def test_summary_json_with_strata(rng, make_arm):
    from tianping.stats.summary import analyze_summary

    stratum, t, y = _data(rng, n=1000)
    strata = _strata(make_arm, stratum, t, y)
    doc = {
        "metric_type": "mean",
        "strata": {
            k: [{"name": a.name, "n": a.n, "sum": a.sum, "sum_sq": a.sum_sq} for a in arms]
            for k, arms in strata.items()
        },
    }
    out = analyze_summary(doc)
    assert out == analyze_stratified(strata, metric_type="mean").to_dict()
    assert out["strata"] == ["s0", "s1", "s2"]
    doc["strata"]["s1"][1]["n"] = -1
    with pytest.raises(InvalidInput, match=r"strata\['s1'\]: .*n must not be negative"):
        analyze_summary(doc)
