"""CUPAC: cross-fitted predictions as a covariate, against scikit-learn and statsmodels."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import statsmodels.api as sm
from sklearn.ensemble import HistGradientBoostingRegressor

from tianping.errors import InvalidInput
from tianping.stats import AnalysisConfig, ArmStats, CovariateSums, compare
from tianping.stats.cupac import (
    BUCKETS,
    MODEL_PARAMS,
    fit_cross_fitted,
    fold_of,
    sample_cutoff,
    unit_bucket,
)

FEATURES = ("pre_orders", "pre_gmv", "exposed_days")


def _units(rng, n=6000):
    """Units whose outcome depends non-linearly on their features; about a third have an
    empty pre-period (new buyers): their pre-period features are zeros."""
    ids = [f"B{i:08d}" for i in range(n)]
    taste = rng.gamma(1.5, 1.0, n)
    new = rng.random(n) < 0.35
    pre_orders = np.where(new, 0, rng.poisson(taste))
    pre_gmv = pre_orders * rng.lognormal(4, 0.5, n)
    exposed_days = rng.uniform(1, 28, n)
    X = np.column_stack([pre_orders, pre_gmv, exposed_days]).astype(float)
    rate = taste * exposed_days / 28
    y = rng.poisson(rate) * rng.lognormal(4, 0.5, n) + 50 * (pre_orders > 2)
    return ids, X, y.astype(float)


def test_folds_are_the_documented_md5_buckets_and_balanced():
    ids = [f"B{i:08d}" for i in range(20_000)]
    for u in ids[:50]:
        digest = hashlib.md5(f"cupac:{u}".encode()).hexdigest()
        assert unit_bucket(u) == int(digest[:4], 16) < BUCKETS
    for k in (2, 4, 5):
        counts = np.bincount(fold_of(ids, k), minlength=k)
        assert counts.sum() == len(ids)
        assert counts.min() / counts.max() > 0.93, counts


def test_the_array_model_predicts_what_scikit_learn_predicts_on_new_units(rng):
    ids, X, y = _units(rng)
    fold = fold_of(ids)
    fit = fit_cross_fitted(X, y, fold, features=FEATURES, outcome="gmv")
    # refit fold 0's model on the same rows with scikit-learn directly
    est = HistGradientBoostingRegressor(**MODEL_PARAMS).fit(X[fold != 0], y[fold != 0])
    _, X_new, _ = _units(np.random.default_rng(99), n=3000)
    assert fit.models[0].predict(X_new) == pytest.approx(est.predict(X_new), rel=1e-12, abs=1e-9)
    assert len(fit.models[0].trees) == MODEL_PARAMS["max_iter"]
    assert fit.models[0].features == FEATURES


def test_no_unit_is_predicted_from_its_own_outcome(rng):
    """Cross-fitting: changing every outcome in fold 0 changes no prediction of fold 0 (its
    model learned from fold 1 alone), and does change fold 1's."""
    ids, X, y = _units(rng)
    fold = fold_of(ids)
    before = fit_cross_fitted(X, y, fold, features=FEATURES, outcome="gmv")
    y2 = y.copy()
    y2[fold == 0] = y2[fold == 0] * 3 + 100
    after = fit_cross_fitted(X, y2, fold, features=FEATURES, outcome="gmv")
    p0, p1 = before.predict(X, fold), after.predict(X, fold)
    assert np.array_equal(p0[fold == 0], p1[fold == 0])
    assert not np.allclose(p0[fold == 1], p1[fold == 1])


def test_out_of_fold_r2_is_the_share_of_variance_explained(rng):
    ids, X, y = _units(rng)
    fold = fold_of(ids)
    fit = fit_cross_fitted(X, y, fold, features=FEATURES, outcome="gmv")
    p = fit.predict(X, fold)
    assert fit.r2 == pytest.approx(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))
    assert 0.1 < fit.r2 < 1
    noise = fit_cross_fitted(X, rng.normal(size=y.size), fold, features=FEATURES, outcome="z")
    assert -0.02 < noise.r2 < 0.01
    assert fit.training_units == y.size and fit.folds == 2


def test_new_buyers_get_a_prediction_from_what_exists_for_them(rng):
    """Units with an empty pre-period are predicted from their exposure time alone: earlier
    exposure, more time to order, higher prediction."""
    ids, X, y = _units(rng)
    fold = fold_of(ids)
    fit = fit_cross_fitted(X, y, fold, features=FEATURES, outcome="gmv")
    new = np.column_stack([np.zeros(3), np.zeros(3), [2.0, 14.0, 27.0]])
    p = fit.models[0].predict(new)
    assert p[0] < p[1] < p[2]


def _arm(name, y, x, names):
    cov = CovariateSums(names, tuple(x.sum(0)), tuple(map(tuple, x.T @ x)), tuple(y @ x))
    return ArmStats(name, n=y.size, sum=y.sum(), sum_sq=y @ y, covariates=cov)


def test_the_adjusted_effect_equals_ols_on_the_prediction(rng):
    """With the cross-fitted prediction among the covariates, the effect is the treatment
    coefficient of OLS on the treatment and the centred covariates (statsmodels), and the
    variance is below single-covariate CUPED's."""
    ids, X, y = _units(rng, n=8000)
    fold = fold_of(ids)
    treated = rng.random(y.size) < 0.5
    y = y + 7.0 * treated
    fit = fit_cross_fitted(X, y, fold, features=FEATURES, outcome="gmv")
    covs = np.column_stack([X[:, 1], fit.predict(X, fold)])
    names = ("pre_gmv", "cupac_gmv")
    c = compare(
        _arm("control", y[~treated], covs[~treated], names),
        _arm("t", y[treated], covs[treated], names),
        AnalysisConfig(metric_type="mean", covariates="regression"),
    )
    t = treated.astype(float)
    ols = sm.OLS(y, sm.add_constant(np.column_stack([t, covs - covs.mean(0)]))).fit()
    assert c.effect_size == pytest.approx(ols.params[1], rel=1e-9)
    assert list(c.covariate_coefficients.values()) == pytest.approx(ols.params[2:], rel=1e-8)
    one = compare(
        _arm("control", y[~treated], covs[~treated, :1], names[:1]),
        _arm("t", y[treated], covs[treated, :1], names[:1]),
        AnalysisConfig(metric_type="mean", covariates="regression"),
    )
    assert c.se**2 < 0.9 * one.se**2


def test_sample_cutoff_keeps_about_the_cap():
    assert sample_cutoff(1000, 200_000) == BUCKETS
    assert sample_cutoff(10_000_000, 200_000) == 1311
    ids = [f"u{i}" for i in range(50_000)]
    cutoff = sample_cutoff(len(ids), 5000)
    kept = sum(unit_bucket(u) < cutoff for u in ids)
    assert 4500 < kept < 5500


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda X, y, f: (X[:, :2], y, f), "features"),
        (lambda X, y, f: (X, y[:-1], f), "y"),
        (lambda X, y, f: (np.where(X > 5, np.nan, X), y, f), "X"),
        (lambda X, y, f: (X, y, np.zeros_like(f)), "units"),
    ],
)
def test_bad_input_names_what_is_wrong(rng, change, field):
    ids, X, y = _units(rng, n=300)
    X, y, f = change(X, y, fold_of(ids))
    with pytest.raises(InvalidInput) as err:
        fit_cross_fitted(X, y, f, features=FEATURES, outcome="gmv")
    assert err.value.field == field and "cupac" in err.value.message


def test_folds_out_of_range_are_refused():
    with pytest.raises(InvalidInput, match="folds must be an integer in 2..16"):
        fold_of(["a"], 1)
