"""Ratio metrics (delta method) and CUPED: against tea-tasting and unit-level regressions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tianping.errors import InvalidInput
from tianping.stats import AnalysisConfig, analyze, compare

FIELDS = (
    "effect_size",
    "effect_size_ci_lower",
    "effect_size_ci_upper",
    "pvalue",
    "rel_effect_size",
    "rel_effect_size_ci_lower",
    "rel_effect_size_ci_upper",
)


def _data(rng, n_c=900, n_t=1100):
    n = n_c + n_t
    x = rng.gamma(2.0, 2.0, n)  # pre-period value
    d = rng.poisson(2.0 + 0.3 * x) + 1  # sessions (denominator)
    y = rng.poisson(0.8 * d + 0.5 * x).astype(float)  # orders (numerator)
    y[n_c:] += rng.binomial(1, 0.15, n_t)  # the treatment adds a little
    return y, d.astype(float), x, n_c


def _tea(metric, y, d, x, n_c):
    tt = pytest.importorskip("tea_tasting")
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {"variant": np.r_[np.zeros(n_c), np.ones(y.size - n_c)].astype(int), "y": y, "d": d, "x": x}
    )
    return tt.Experiment(m=metric(tt)).analyze(frame, control=0)["m"]


def _assert_same(ours, ref):
    for f in FIELDS:
        assert getattr(ours, f) == pytest.approx(getattr(ref, f), rel=1e-8), f


def test_ratio_matches_tea_tasting(rng, make_arm):
    y, d, x, n_c = _data(rng)
    ref = _tea(lambda tt: tt.RatioOfMeans("y", "d"), y, d, x, n_c)
    c = compare(
        make_arm("control", y[:n_c], d[:n_c]),
        make_arm("t", y[n_c:], d[n_c:]),
        AnalysisConfig(metric_type="ratio", relative_scale="log"),
    )
    _assert_same(c, ref)


def test_ratio_standard_error_is_that_of_the_linearisation(rng, make_arm):
    y, d, _, n_c = _data(rng)
    arms = [make_arm("control", y[:n_c], d[:n_c]), make_arm("t", y[n_c:], d[n_c:])]
    c = compare(*arms, AnalysisConfig(metric_type="ratio"))
    lin = []
    for part in (slice(0, n_c), slice(n_c, None)):
        r = y[part].sum() / d[part].sum()
        lin.append((y[part] - r * d[part]) / d[part].mean())
    se = np.sqrt(lin[0].var(ddof=1) / lin[0].size + lin[1].var(ddof=1) / lin[1].size)
    assert c.se == pytest.approx(se, rel=1e-9)
    assert c.effect_size == pytest.approx(
        y[n_c:].sum() / d[n_c:].sum() - y[:n_c].sum() / d[:n_c].sum()
    )


def test_cuped_mean_matches_tea_tasting(rng, make_arm):
    y, _, x, n_c = _data(rng)
    ref = _tea(lambda tt: tt.Mean("y", covariate="x"), y, None, x, n_c)
    c = compare(
        make_arm("control", y[:n_c], x=x[:n_c]),
        make_arm("t", y[n_c:], x=x[n_c:]),
        AnalysisConfig(metric_type="mean", cuped=True, relative_scale="log"),
    )
    _assert_same(c, ref)


def test_cuped_ratio_matches_tea_tasting(rng, make_arm):
    y, d, x, n_c = _data(rng)
    ref = _tea(lambda tt: tt.RatioOfMeans("y", "d", numer_covariate="x"), y, d, x, n_c)
    c = compare(
        make_arm("control", y[:n_c], d[:n_c], x[:n_c]),
        make_arm("t", y[n_c:], d[n_c:], x[n_c:]),
        AnalysisConfig(metric_type="ratio", cuped=True, relative_scale="log"),
    )
    _assert_same(c, ref)
    assert c.variance_reduction > 0.05


def test_cuped_effect_and_variance_reduction_from_unit_level_regression(rng, make_arm):
    n = 4000
    x = rng.normal(10, 3, 2 * n)
    y = 2 + 0.9 * x + rng.normal(0, 2, 2 * n)
    y[n:] += 0.2
    c = compare(
        make_arm("control", y[:n], x=x[:n]),
        make_arm("t", y[n:], x=x[n:]),
        AnalysisConfig(metric_type="mean", cuped=True),
    )
    theta = np.cov(y, x)[0, 1] / x.var(ddof=1)
    assert c.cuped_theta == pytest.approx(theta, rel=1e-9)
    adj = y - theta * (x - x.mean())
    assert c.effect_size == pytest.approx(adj[n:].mean() - adj[:n].mean(), rel=1e-9)
    ref = stats.ttest_ind(adj[n:], adj[:n], equal_var=False)
    assert c.pvalue == pytest.approx(ref.pvalue, rel=1e-6)
    # variance reduction is about the squared correlation of y and x
    rho2 = np.corrcoef(y, x)[0, 1] ** 2
    assert c.variance_reduction == pytest.approx(rho2, abs=0.01)
    plain = compare(
        make_arm("control", y[:n]), make_arm("t", y[n:]), AnalysisConfig(metric_type="mean")
    )
    assert c.se**2 == pytest.approx(plain.se**2 * (1 - c.variance_reduction), rel=1e-9)


def test_cuped_ratio_needs_the_denominator_cross_product(rng, make_arm):
    y, d, x, n_c = _data(rng)
    control = make_arm("control", y[:n_c], d[:n_c], x[:n_c])
    without = type(control)(**{**control.__dict__, "pre_den_cross_sum": None})
    with pytest.raises(InvalidInput, match="pre_den_cross_sum"):
        analyze(
            [without, make_arm("t", y[n_c:], d[n_c:], x[n_c:])], metric_type="ratio", cuped=True
        )
