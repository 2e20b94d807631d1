"""Regression adjustment on many covariates: against statsmodels OLS and tea-tasting."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from tianping.errors import InvalidInput
from tianping.stats import AnalysisConfig, ArmStats, CovariateSums, analyze, compare
from tianping.stats.summary import analyze_summary


def covariate_arm(name, y, xs, names=None, d=None) -> ArmStats:
    """Sufficient statistics with covariate sums, as the warehouse query computes them."""
    y = np.asarray(y, float)
    x = np.column_stack(xs).astype(float)
    fields = {"sum": y.sum(), "sum_sq": y @ y}
    den_cross = None
    if d is not None:
        d = np.asarray(d, float)
        fields.update(den_sum=d.sum(), den_sum_sq=d @ d, num_den_sum=y @ d)
        den_cross = tuple(d @ x)
    cov = CovariateSums(
        names=tuple(names or (f"x{j}" for j in range(x.shape[1]))),
        sum=tuple(x.sum(axis=0)),
        cross=tuple(map(tuple, x.T @ x)),
        y_cross=tuple(y @ x),
        den_cross=den_cross,
    )
    return ArmStats(name, n=y.size, covariates=cov, **fields)


def _data(rng, n_c=1500, n_t=1300, k=4):
    n = n_c + n_t
    x = rng.gamma(2.0, 1.5, (n, k))
    x[:, -1] = rng.integers(0, 2, n)  # a 0/1 unit attribute
    y = 3.0 + x @ np.linspace(0.5, 2.0, k) + rng.standard_t(5, n) * (1 + 0.3 * x[:, 0])
    y[n_c:] += 0.4
    return y, x, n_c


def _ols(y, x, n_c):
    t = np.r_[np.zeros(n_c), np.ones(y.size - n_c)]
    design = sm.add_constant(np.column_stack([t, x - x.mean(axis=0)]))
    return t, sm.OLS(y, design).fit()


def test_effect_equals_the_ols_coefficient_of_treatment_exactly(rng):
    y, x, n_c = _data(rng)
    _, fit = _ols(y, x, n_c)
    c = compare(
        covariate_arm("control", y[:n_c], x[:n_c].T),
        covariate_arm("t", y[n_c:], x[n_c:].T),
        AnalysisConfig(metric_type="mean", covariates="regression"),
    )
    assert c.effect_size == pytest.approx(fit.params[1], rel=1e-10)
    assert list(c.covariate_coefficients.values()) == pytest.approx(fit.params[2:], rel=1e-9)
    # the control's adjusted mean is the OLS prediction for a control unit at the mean x
    assert c.control_mean == pytest.approx(fit.params[0], rel=1e-10)
    assert c.treatment_mean == pytest.approx(fit.params[0] + fit.params[1], rel=1e-10)


def test_standard_error_is_the_welch_one_of_the_residualised_outcome(rng):
    """The delta-method variance with the estimated coefficients: HC2 of ``y - θ·x`` on the
    treatment equals Welch's; and it approaches the robust SE of the full regression."""
    y, x, n_c = _data(rng)
    t, fit = _ols(y, x, n_c)
    c = compare(
        covariate_arm("control", y[:n_c], x[:n_c].T),
        covariate_arm("t", y[n_c:], x[n_c:].T),
        AnalysisConfig(metric_type="mean", covariates="regression"),
    )
    resid = y - x @ np.array(list(c.covariate_coefficients.values()))
    hc2 = sm.OLS(resid, sm.add_constant(t)).fit(cov_type="HC2")
    assert c.se == pytest.approx(hc2.bse[1], rel=1e-9)
    robust = sm.OLS(y, fit.model.exog).fit(cov_type="HC1")
    assert c.se == pytest.approx(robust.bse[1], rel=0.01)


def test_regression_beats_single_cuped_and_nothing(rng):
    y, x, n_c = _data(rng)
    arms = [covariate_arm("control", y[:n_c], x[:n_c].T), covariate_arm("t", y[n_c:], x[n_c:].T)]
    plain = compare(*arms, AnalysisConfig(metric_type="mean"))
    many = compare(*arms, AnalysisConfig(metric_type="mean", covariates="regression"))
    assert many.se < plain.se
    assert many.variance_reduction == pytest.approx(1 - many.se**2 / plain.se**2, rel=1e-9)


def test_ratio_metric_matches_ols_on_the_linearised_outcome(rng):
    """For a ratio, the effect is that of OLS of the linearisation on treatment and covariates
    (θ pooled within arms), checked with statsmodels on the unit values."""
    n_c, n_t = 1200, 1000
    n = n_c + n_t
    x = rng.gamma(2.0, 1.0, (n, 2))
    d = (rng.poisson(1 + x[:, 1]) + 1).astype(float)
    y = rng.poisson(0.5 * d + 0.4 * x[:, 0]).astype(float)
    arms = [
        covariate_arm("control", y[:n_c], x[:n_c].T, d=d[:n_c]),
        covariate_arm("t", y[n_c:], x[n_c:].T, d=d[n_c:]),
    ]
    c = compare(*arms, AnalysisConfig(metric_type="ratio", covariates="regression"))
    lin = np.empty(n)
    for sl in (slice(0, n_c), slice(n_c, n)):
        r, dbar = y[sl].sum() / d[sl].sum(), d[sl].mean()
        lin[sl] = (y[sl] - r * d[sl]) / dbar + r
    _, fit = _ols(lin, x, n_c)
    assert c.effect_size == pytest.approx(fit.params[1], rel=1e-9)


def test_ratio_covariate_matches_tea_tasting(rng):
    tt = pytest.importorskip("tea_tasting")
    pd = pytest.importorskip("pandas")
    n_c, n_t = 900, 1100
    n = n_c + n_t
    xd = (rng.poisson(3, n) + 1).astype(float)
    xn = rng.binomial(xd.astype(int), 0.2).astype(float)
    d = (rng.poisson(0.8 * xd) + 1).astype(float)
    y = rng.binomial(d.astype(int), np.clip(0.1 + 0.5 * xn / xd, 0, 1)).astype(float)
    frame = pd.DataFrame(
        {
            "variant": np.r_[np.zeros(n_c), np.ones(n_t)].astype(int),
            "y": y,
            "d": d,
            "xn": xn,
            "xd": xd,
        }  # fmt: skip
    )
    metric = tt.RatioOfMeans("y", "d", numer_covariate="xn", denom_covariate="xd")
    ref = tt.Experiment(m=metric).analyze(frame, control=0)["m"]
    names = ("pre_refunded_orders", "pre_orders")
    arms = [
        covariate_arm("control", y[:n_c], (xn[:n_c], xd[:n_c]), names, d=d[:n_c]),
        covariate_arm("t", y[n_c:], (xn[n_c:], xd[n_c:]), names, d=d[n_c:]),
    ]
    c = compare(
        *arms, AnalysisConfig(metric_type="ratio", covariates="ratio", relative_scale="log")
    )
    for f in ("effect_size", "effect_size_ci_lower", "effect_size_ci_upper", "pvalue",
              "rel_effect_size", "rel_effect_size_ci_lower", "rel_effect_size_ci_upper"):  # fmt: skip
        assert getattr(c, f) == pytest.approx(getattr(ref, f), rel=1e-8), f
    assert list(c.covariate_coefficients) == ["pre_refunded_orders/pre_orders"]


def test_summary_json_carries_covariates(rng):
    y, x, n_c = _data(rng, k=2)
    arms = [covariate_arm("control", y[:n_c], x[:n_c].T), covariate_arm("t", y[n_c:], x[n_c:].T)]
    doc = {
        "metric_type": "mean",
        "covariates": "regression",
        "arms": [
            {"name": a.name, "n": a.n, "sum": a.sum, "sum_sq": a.sum_sq,
             "covariates": {"names": list(a.covariates.names), "sum": list(a.covariates.sum),
                            "cross": [list(r) for r in a.covariates.cross],
                            "y_cross": list(a.covariates.y_cross)}}
            for a in arms
        ],
    }  # fmt: skip
    out = analyze_summary(doc)
    direct = analyze(arms, metric_type="mean", covariates="regression").to_dict()
    assert out == direct
    row = out["comparisons"][0]
    assert set(row["covariate_coefficients"]) == {"x0", "x1"}
    assert 0 < row["variance_reduction"] < 1
    assert "cuped_theta" not in row


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(cross=[[1.0, 2.0]]), "covariates.cross must be a 2 x 2 matrix"),
        (lambda c: c.update(sum=[1.0]), "covariates.sum must be a list of 2 numbers"),
        (lambda c: c.update(y_cross=[1.0, "a"]), "covariates.y_cross must hold numbers"),
        (lambda c: c.update(names=["x", "x"]), "names must be unique"),
        (lambda c: c.pop("cross"), "covariates: field 'cross' is required"),
    ],
)
def test_bad_covariate_sums_name_the_arm_and_field(change, message):
    cov = {"names": ["x", "z"], "sum": [1.0, 2.0], "cross": [[3.0, 1.0], [1.0, 5.0]],
           "y_cross": [2.0, 3.0]}  # fmt: skip
    bad = dict(cov)
    change(bad)
    doc = {
        "metric_type": "mean",
        "covariates": "regression",
        "arms": [{"name": "control", "n": 10, "sum": 5, "sum_sq": 9, "covariates": cov},
                 {"name": "t", "n": 10, "sum": 6, "sum_sq": 9, "covariates": bad}],
    }  # fmt: skip
    with pytest.raises(InvalidInput, match=message) as err:
        analyze_summary(doc)
    assert "'t'" in err.value.message or "arms[1]" in err.value.message


def test_arms_without_covariates_are_refused():
    arms = [ArmStats("control", 10, 5.0, 9.0), ArmStats("t", 10, 6.0, 9.0)]
    with pytest.raises(InvalidInput, match="covariate sums are required"):
        analyze(arms, metric_type="mean", covariates="regression")


def test_constant_copied_and_rescaled_covariates_give_the_same_effect(rng):
    """A constant covariate gets no coefficient, a copy of another shares its coefficient, and
    a covariate in yuan instead of thousands of yuan gets a coefficient 1000 times smaller:
    the effect and its standard error do not move (the solve is on the correlation scale, so
    rounding in the sums, which differs between engines, cannot pick a different answer)."""
    y, x, n_c = _data(rng)
    config = AnalysisConfig(metric_type="mean", covariates="regression")

    def fit(columns):
        xs = np.column_stack(columns)
        return compare(covariate_arm("c", y[:n_c], xs[:n_c].T),
                       covariate_arm("t", y[n_c:], xs[n_c:].T), config)  # fmt: skip

    base = fit([x[:, 0], x[:, 1]])
    with_constant = fit([x[:, 0], x[:, 1], np.full(y.size, 7.0)])
    with_copy = fit([x[:, 0], x[:, 1], x[:, 1]])
    rescaled = fit([x[:, 0] * 1000, x[:, 1]])
    for other in (with_constant, with_copy, rescaled):
        assert other.effect_size == pytest.approx(base.effect_size, rel=1e-9)
        assert other.se == pytest.approx(base.se, rel=1e-9)
    theta = list(base.covariate_coefficients.values())
    assert list(with_constant.covariate_coefficients.values()) == pytest.approx(
        [*theta, 0.0], abs=1e-12, rel=1e-9
    )
    assert list(with_copy.covariate_coefficients.values()) == pytest.approx(
        [theta[0], theta[1] / 2, theta[1] / 2], rel=1e-8
    )
    assert rescaled.covariate_coefficients["x0"] == pytest.approx(theta[0] / 1000, rel=1e-9)
