"""Regression adjustment on many covariates (CUPED++) from per-arm cross products (pure).

The warehouse returns, per arm, the sums of the covariates ``x_1 .. x_k`` (pre-period values
of every metric of the experiment, declared unit attributes), their cross products
``Σ x_j x_l``, and their products with the metric's value ``Σ y x_j`` (and, for a ratio
metric, with its denominator ``Σ d x_j``): :class:`CovariateSums`. From these sums alone:

- every arm's vector ``v = (y, [d,] x_1 .. x_k)`` has its mean and sample covariance
  matrix ``S`` (divisor ``n - 1``);
- the metric is linearised as ``g_y · v`` (``y`` itself for a mean or proportion;
  ``(y - R d) / d̄`` for a ratio, the delta method) and each covariate as ``g_j · v``;
- ``regression``: every ``x_j`` is a covariate; ``θ = C_xx⁻¹ C_xy`` with ``C`` the
  *within-arm* covariances pooled over both arms (``Σ_a (n_a - 1) G S_a Gᵀ``). For a mean
  metric this is the slope vector of the ordinary least squares fit of ``y`` on the
  treatment indicator and the covariates, so the adjusted effect
  ``(ȳ_t - ȳ_c) - θ·(x̄_t - x̄_c)`` equals the OLS coefficient of the treatment exactly;
- ``ratio``: the covariate is one ratio ``x_num / x_den`` (e.g. last period's refund rate
  for this period's refund rate), linearised like the metric, with ``θ`` from both arms
  pooled — tea-tasting's ``RatioOfMeans(numer_covariate=, denom_covariate=)``;
- each arm's estimate becomes ``m_a - θ·(c̄_a - c̄)`` (``c̄`` the pooled covariate means), and
  its per-unit variance the delta-method one with the estimated coefficients,
  ``g_y S_a g_y - 2 θ·(G S_a g_y) + θ·(G S_a Gᵀ) θ`` — the variance of the residual
  ``y - θ·x`` in the arm, so unequal arm variances are allowed (as Welch).

A singular ``C_xx`` (a covariate that is constant, or a copy of another) is solved with the
pseudo-inverse on the correlation scale (constant covariates get no coefficient): the fitted
values, hence the effect, are those of OLS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tianping.errors import InvalidInput
from tianping.stats.moments import ArmMoments, arm_moments

COVARIATE_MODES: tuple[str, ...] = ("regression", "ratio")


@dataclass(frozen=True)
class RegressionFit:
    """The regression-adjusted moments of one control/treatment pair.

    Attributes:
        control: the control's adjusted moments.
        treatment: the treatment's adjusted moments.
        names: the covariates (for ``ratio``: one, ``num/den``).
        theta: the pooled coefficients, one per covariate.
        variance_reduction: ``1 - Var(adjusted effect) / Var(unadjusted effect)``.
    """

    control: ArmMoments
    treatment: ArmMoments
    names: tuple[str, ...]
    theta: tuple[float, ...]
    variance_reduction: float


def regression_moments(control, treatment, metric_type: str, mode: str = "regression"):
    """Regression-adjusted moments of a control/treatment pair (see the module docstring).

    Args:
        control: the control's :class:`~tianping.stats.sufficient.ArmStats` with
            ``covariates``.
        treatment: the treatment's, with the same covariates.
        metric_type: ``mean``, ``proportion`` or ``ratio``.
        mode: ``regression`` (every covariate, OLS slopes) or ``ratio`` (two covariates, the
            pre-period numerator and denominator, forming one ratio covariate).

    Returns:
        A :class:`RegressionFit`.
    """
    _check(control, treatment, metric_type, mode)
    arms = (control, treatment)
    moments = [_arm_vector(a, metric_type) for a in arms]
    if mode == "regression":
        grads = [_gradients(mean, metric_type, mode) for mean, _ in moments]
        pooled = sum(
            (a.n - 1) * g @ s @ g.T for a, g, (_, s) in zip(arms, grads, moments, strict=True)
        )
        values = [mean[-len(control.covariates.names) :] for mean, _ in moments]
        centre = sum(a.n * v for a, v in zip(arms, values, strict=True)) / (control.n + treatment.n)
        names = control.covariates.names
        weight = control.n + treatment.n
    else:
        total = control + treatment
        mean_p, s_p = _arm_vector(total, metric_type)
        g_p = _gradients(mean_p, metric_type, mode)
        pooled = g_p @ s_p @ g_p.T
        grads = [_gradients(mean, metric_type, mode) for mean, _ in moments]
        values = [np.array([_ratio_value(mean)]) for mean, _ in moments]
        centre = np.array([_ratio_value(mean_p)])
        names = (f"{control.covariates.names[0]}/{control.covariates.names[1]}",)
        weight = 1
    theta = _solve(pooled[1:, 1:], pooled[1:, 0], centre, weight)
    adjusted = [
        _adjusted(a, metric_type, g, s, theta, v - centre)
        for a, g, (_, s), v in zip(arms, grads, moments, values, strict=True)
    ]
    plain = [arm_moments(a, metric_type) for a in arms]
    before = plain[0].se2 + plain[1].se2
    after = adjusted[0].se2 + adjusted[1].se2
    reduction = 0.0 if before <= 0 else 1.0 - after / before
    return RegressionFit(adjusted[0], adjusted[1], names, tuple(map(float, theta)), reduction)


#: A covariate whose spread is below this share of its size is a constant (its sums carry
#: only rounding); directions of the covariates' correlation matrix below this share of the
#: largest are collinear. Both are dropped, so every engine's rounding gives the same answer.
_CONSTANT, _COLLINEAR = 1e-12, 1e-10


def _solve(cxx: np.ndarray, cxy: np.ndarray, centre: np.ndarray, weight: float) -> np.ndarray:
    """``θ = C_xx⁺ C_xy``, solved on the correlation scale: covariates measured in yuan and in
    0/1 flags differ by many orders of magnitude, and a pseudo-inverse on the raw scale would
    cut by the largest. Constant covariates get ``θ = 0``; among collinear ones the
    minimum-norm solution on the standardised scale."""
    variance = np.clip(np.diag(cxx), 0.0, None)
    live = variance > _CONSTANT * (variance + weight * np.asarray(centre) ** 2)
    theta = np.zeros(cxy.size)
    if not live.any():
        return theta
    sd = np.sqrt(variance[live])
    corr = cxx[np.ix_(live, live)] / np.outer(sd, sd)
    theta[live] = np.linalg.pinv(corr, rcond=_COLLINEAR, hermitian=True) @ (cxy[live] / sd) / sd
    return theta


def _adjusted(arm, metric_type, g, s, theta, offset) -> ArmMoments:
    plain = arm_moments(arm, metric_type)
    cov = g @ s @ g.T
    variance = cov[0, 0] - 2.0 * theta @ cov[1:, 0] + theta @ cov[1:, 1:] @ theta
    mean = plain.mean - float(theta @ offset)
    return ArmMoments(arm.name, arm.n, mean, max(float(variance), 0.0))


def _arm_vector(arm, metric_type: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample covariance of ``(y, [d,] x_1..x_k)`` in one arm."""
    c = arm.covariates
    ratio = metric_type == "ratio"
    head = [arm.sum, arm.den_sum] if ratio else [arm.sum]
    sums = np.array([*head, *c.sum])
    p = sums.size
    cross = np.empty((p, p))
    h = len(head)
    cross[0, 0] = arm.sum_sq_or_sum
    if ratio:
        cross[0, 1] = cross[1, 0] = arm.num_den_sum
        cross[1, 1] = arm.den_sum_sq
        cross[1, h:] = cross[h:, 1] = c.den_cross
    cross[0, h:] = cross[h:, 0] = c.y_cross
    cross[h:, h:] = np.array(c.cross)
    mean = sums / arm.n
    cov = (cross - np.outer(sums, sums) / arm.n) / (arm.n - 1)
    return mean, cov


def _gradients(mean: np.ndarray, metric_type: str, mode: str) -> np.ndarray:
    """Rows: the linearisation of the metric, then of each covariate, over ``v``."""
    h = 2 if metric_type == "ratio" else 1
    p = mean.size
    outcome = np.zeros(p)
    if metric_type == "ratio":
        r = mean[0] / mean[1]
        outcome[0], outcome[1] = 1.0 / mean[1], -r / mean[1]
    else:
        outcome[0] = 1.0
    if mode == "regression":
        covs = np.eye(p)[h:]
    else:
        covs = np.zeros((1, p))
        num, den = mean[h], mean[h + 1]
        covs[0, h], covs[0, h + 1] = 1.0 / den, -num / den**2
    return np.vstack([outcome, covs])


def _ratio_value(mean: np.ndarray) -> float:
    h = mean.size - 2
    return float(mean[h] / mean[h + 1])


def _check(control, treatment, metric_type: str, mode: str) -> None:
    if mode not in COVARIATE_MODES:
        raise InvalidInput(
            f"unknown covariates mode {mode!r}; use one of {', '.join(COVARIATE_MODES)}",
            field="covariates",
        )
    for arm in (control, treatment):
        c = arm.covariates
        if c is None:
            raise InvalidInput(
                f"arm {arm.name!r}: covariate sums are required for regression adjustment",
                field="covariates",
            )
        if metric_type == "ratio" and c.den_cross is None:
            raise InvalidInput(
                f"arm {arm.name!r}: covariates.den_cross is required for a ratio metric",
                field="covariates.den_cross",
            )
        if mode == "ratio" and len(c.names) != 2:
            raise InvalidInput(
                f"arm {arm.name!r}: a ratio covariate needs exactly two covariates "
                f"(numerator, denominator), got {len(c.names)}",
                field="covariates",
            )
        if mode == "ratio" and c.sum[1] == 0:
            raise InvalidInput(
                f"arm {arm.name!r}: the ratio covariate's denominator sums to 0",
                field="covariates.sum",
            )
    if control.covariates.names != treatment.covariates.names:
        raise InvalidInput(
            f"arms {control.name!r} and {treatment.name!r} have different covariates",
            field="covariates",
        )
