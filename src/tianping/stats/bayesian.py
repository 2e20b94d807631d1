"""Bayesian comparison: posterior of the lift, chance to win and expected loss (risk).

Normal model (default, every metric type; GrowthBook's current engine). The relative lift
``L = m_t/m_c - 1`` has the delta-method normal likelihood ``N(L_hat, rel_se**2)`` (see
:mod:`tianping.stats.effects`). With a flat prior the posterior is that normal; with a
Gaussian prior ``N(mu0, v0)`` on ``L`` it is the precision-weighted conjugate update. The
absolute effect gets the same prior scaled by the control's mean (``N(mu0 m_c, v0 m_c**2)``).

- ``chance_to_win = P(L > 0)`` (``P(L < 0)`` when lower is better: ``alternative="less"``);
- ``risk`` (shipping the treatment) ``= E[max(-L, 0)] = s phi(m/s) - m Phi(-m/s)``;
  ``risk_control`` (keeping the control) ``= E[max(L, 0)]``; both in relative units;
- intervals are equal-tailed credible intervals of level ``1 - alpha``.

The p-values (absolute and relative) are the fixed-horizon Welch ones, reported for reference.

Beta model (proportions, :func:`beta_binomial_test`). Each arm's rate has the conjugate
posterior ``Beta(a0 + successes, b0 + failures)``; chance to win, risks and the quantiles of
the lift are computed by one-dimensional quadrature over the control's posterior (exact up
to quadrature error, no normal approximation; 2,000 Gauss–Legendre nodes).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import optimize, stats

from tianping.errors import InvalidInput
from tianping.stats.contrast import Contrast, check_alpha, check_alternative, one_sided
from tianping.stats.effects import Effect, effect_of
from tianping.stats.frequentist import relative_pvalue, t_pvalue
from tianping.stats.moments import arm_moments
from tianping.stats.sufficient import ArmStats


def normal_posterior(
    estimate: float, se: float, prior_mean: float = 0.0, prior_variance: float | None = None
) -> tuple[float, float]:
    """Posterior mean and standard deviation of a normal likelihood under a normal prior.

    Args:
        estimate: the likelihood's mean.
        se: the likelihood's standard deviation.
        prior_mean: the prior's mean.
        prior_variance: the prior's variance; None for a flat (improper) prior.
    """
    if prior_variance is None or se <= 0:
        return estimate, se
    precision = 1.0 / se**2 + 1.0 / prior_variance
    mean = (estimate / se**2 + prior_mean / prior_variance) / precision
    return mean, math.sqrt(1.0 / precision)


def expected_loss(mean: float, sd: float) -> tuple[float, float]:
    """``(E[max(-X, 0)], E[max(X, 0)])`` for ``X ~ N(mean, sd**2)``.

    >>> [round(x, 5) for x in expected_loss(0.04082, 0.14725)]
    [0.04058, 0.0814]
    """
    if sd <= 0:
        return max(-mean, 0.0), max(mean, 0.0)
    z = mean / sd
    upside = float(sd * stats.norm.pdf(z) + mean * stats.norm.cdf(z))
    return upside - mean, upside


def bayesian_test(
    effect: Effect,
    *,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    prior_mean: float = 0.0,
    prior_variance: float | None = None,
) -> Contrast:
    """Normal-model Bayesian comparison of one contrast.

    Args:
        effect: the contrast (see :func:`~tianping.stats.effects.effect_of`).
        alpha: credible intervals have level ``1 - alpha``.
        alternative: ``less`` means lower is better (chance to win and risk flip); a
            one-sided alternative also makes the intervals one-sided.
        prior_mean: prior mean of the relative lift.
        prior_variance: prior variance of the relative lift; None (default) is flat.
    """
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    if prior_variance is not None and not prior_variance > 0:
        raise InvalidInput(
            f"prior_variance must be positive, got {prior_variance!r}", field="prior_variance"
        )
    mc = effect.control.mean
    abs_prior_var = None if prior_variance is None else prior_variance * mc**2
    abs_mean, abs_sd = normal_posterior(
        effect.effect_size, effect.se, prior_mean * mc, abs_prior_var
    )
    lower, upper = _credible(abs_mean, abs_sd, alpha, alternative)
    rel = (None, None, None)
    ctw, risk, risk_control = _normal_decision(abs_mean, abs_sd, alternative)
    if effect.rel_effect_size is not None:
        rel_mean, rel_sd = normal_posterior(
            effect.rel_effect_size, effect.rel_se, prior_mean, prior_variance
        )
        rel = (rel_mean, *_credible(rel_mean, rel_sd, alpha, alternative))
        ctw, risk, risk_control = _normal_decision(rel_mean, rel_sd, alternative)
    return Contrast(
        effect_size=abs_mean,
        effect_size_ci_lower=lower,
        effect_size_ci_upper=upper,
        rel_effect_size=rel[0],
        rel_effect_size_ci_lower=rel[1],
        rel_effect_size_ci_upper=rel[2],
        pvalue=t_pvalue(effect.effect_size, effect.se, effect.df, alternative),
        rel_pvalue=relative_pvalue(effect, alternative),
        chance_to_win=ctw,
        risk=risk if effect.rel_effect_size is not None else None,
        risk_control=risk_control if effect.rel_effect_size is not None else None,
    )


def beta_binomial_test(
    control: ArmStats,
    treatment: ArmStats,
    *,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
) -> Contrast:
    """Exact Beta-posterior comparison of two proportions.

    ``effect_size`` is the difference of the posterior means, ``rel_effect_size`` their
    ratio minus one; intervals are equal-tailed credible intervals of ``p_t - p_c`` and
    ``p_t / p_c - 1``; ``risk``/``risk_control`` are expected losses relative to the control's
    rate, ``E[max(p_c - p_t, 0) / p_c]`` and ``E[max(p_t - p_c, 0) / p_c]``.

    Args:
        control: the control's sufficient statistics (``sum`` = successes).
        treatment: the treatment's.
        alpha: credible intervals have level ``1 - alpha``.
        alternative: ``less`` means lower is better.
        prior_alpha: the Beta prior's first parameter (both arms).
        prior_beta: the Beta prior's second parameter.
    """
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    if not (prior_alpha > 0 and prior_beta > 0):
        raise InvalidInput("the Beta prior's parameters must be positive", field="prior")
    pc = stats.beta(prior_alpha + control.sum, prior_beta + control.n - control.sum)
    pt = stats.beta(prior_alpha + treatment.sum, prior_beta + treatment.n - treatment.sum)
    p_better = _expect(pc, lambda x: pt.sf(x))
    loss_t = _expect(pc, lambda x: _below(pt, x) / x)
    loss_c = _expect(pc, lambda x: _above(pt, x) / x)
    lower_is_better = alternative == "less"
    lo_q, hi_q = _tail_levels(alpha, alternative)
    abs_lo, abs_hi = (_quantile(pc, pt, q, ratio=False) for q in (lo_q, hi_q))
    rel_lo, rel_hi = (_quantile(pc, pt, q, ratio=True) for q in (lo_q, hi_q))
    welch = effect_of(arm_moments(control, "proportion"), arm_moments(treatment, "proportion"))
    return Contrast(
        effect_size=pt.mean() - pc.mean(),
        effect_size_ci_lower=abs_lo,
        effect_size_ci_upper=abs_hi,
        rel_effect_size=pt.mean() / pc.mean() - 1.0,
        rel_effect_size_ci_lower=rel_lo,
        rel_effect_size_ci_upper=rel_hi,
        pvalue=t_pvalue(welch.effect_size, welch.se, welch.df, alternative),
        rel_pvalue=relative_pvalue(welch, alternative),
        chance_to_win=1.0 - p_better if lower_is_better else p_better,
        risk=loss_c if lower_is_better else loss_t,
        risk_control=loss_t if lower_is_better else loss_c,
    )


def _normal_decision(mean: float, sd: float, alternative: str) -> tuple[float, float, float]:
    if sd <= 0:
        win = 0.5 if mean == 0 else float(mean > 0)
    else:
        win = float(stats.norm.sf(0.0, mean, sd))
    to_treatment, to_control = expected_loss(mean, sd)
    if alternative == "less":
        return 1.0 - win, to_control, to_treatment
    return win, to_treatment, to_control


def _credible(mean: float, sd: float, alpha: float, alternative: str) -> tuple[float, float]:
    z = stats.norm.ppf(1 - (alpha if alternative != "two-sided" else alpha / 2))
    return one_sided(mean - z * sd, mean + z * sd, alternative)


def _tail_levels(alpha: float, alternative: str) -> tuple[float, float]:
    if alternative == "greater":
        return alpha, 1.0
    if alternative == "less":
        return 0.0, 1 - alpha
    return alpha / 2, 1 - alpha / 2


def _below(dist, x: float) -> float:
    """``E[max(x - P, 0)]`` for ``P`` with the Beta distribution ``dist``."""
    a, b = dist.args
    return x * dist.cdf(x) - dist.mean() * stats.beta.cdf(x, a + 1, b)


def _above(dist, x: float) -> float:
    """``E[max(P - x, 0)]``."""
    return _below(dist, x) - x + dist.mean()


def _expect(dist, func) -> float:
    """``E[func(P)]`` for ``P ~ dist`` by Gauss–Legendre quadrature in probability space
    (``P = dist.ppf(U)``, ``U`` uniform), which needs no density and copes with peaks."""
    nodes, weights = _gauss_legendre(2000)
    return float(np.sum(weights * func(dist.ppf(nodes))))


@functools.cache
def _gauss_legendre(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights on [0, 1]; computed on first use (seconds for 2,000 nodes), not at import."""
    x, w = np.polynomial.legendre.leggauss(k)
    return (x + 1) / 2, w / 2


def _quantile(pc, pt, q: float, *, ratio: bool) -> float:
    """Quantile ``q`` of ``p_t / p_c - 1`` (ratio) or ``p_t - p_c``; 0 and 1 give the ends."""
    if q <= 0.0:
        return -1.0 if ratio else -math.inf
    if q >= 1.0:
        return math.inf

    def gap(r: float) -> float:
        shift = (lambda x: (1 + r) * x) if ratio else (lambda x: x + r)
        return _expect(pc, lambda x: pt.cdf(shift(x))) - q

    lo, hi = (-1.0, 1.0)
    while ratio and gap(hi) < 0:
        hi *= 4
    return float(optimize.brentq(gap, lo, hi, xtol=1e-10))
