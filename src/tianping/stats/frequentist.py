"""Fixed-horizon frequentist test: Welch's t test with Welch–Satterthwaite intervals.

The p-value tests the absolute effect (so it equals
``scipy.stats.ttest_ind_from_stats(..., equal_var=False)`` on the same moments); the
relative interval uses the delta-method standard error (or the log scale) with the same
t quantile, and the relative p-value tests the relative effect with that same standard error
and degrees of freedom (GrowthBook's gbstats ``TwoSidedTTest``), so it is below alpha exactly
when the relative interval excludes zero. Two-sided intervals use ``t(1 - alpha/2, df)``, one-sided ones ``t(1 - alpha, df)``
and leave the other bound infinite.
"""

from __future__ import annotations

import math

from scipy import stats

from tianping.stats.contrast import (
    Contrast,
    check_alpha,
    check_alternative,
    check_relative_scale,
    one_sided,
)
from tianping.stats.effects import Effect


def welch_test(
    effect: Effect,
    *,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    relative_scale: str = "delta",
) -> Contrast:
    """Welch t test and confidence intervals for one contrast.

    Args:
        effect: the contrast (see :func:`~tianping.stats.effects.effect_of`).
        alpha: significance level; intervals have coverage ``1 - alpha``.
        alternative: ``two-sided``, ``greater`` (treatment > control) or ``less``.
        relative_scale: ``delta`` (symmetric delta-method interval) or ``log``.
    """
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    relative_scale = check_relative_scale(relative_scale)
    lower, upper = _interval(effect.effect_size, effect.se, effect.df, alpha, alternative)
    rel = _relative_interval(effect, alpha, alternative, relative_scale)
    return Contrast(
        effect_size=effect.effect_size,
        effect_size_ci_lower=lower,
        effect_size_ci_upper=upper,
        rel_effect_size=effect.rel_effect_size,
        rel_effect_size_ci_lower=rel[0],
        rel_effect_size_ci_upper=rel[1],
        pvalue=t_pvalue(effect.effect_size, effect.se, effect.df, alternative),
        rel_pvalue=relative_pvalue(effect, alternative, relative_scale),
    )


def relative_pvalue(effect: Effect, alternative: str, scale: str = "delta") -> float | None:
    """Welch p-value of "no relative difference" on the scale of the relative interval.

    ``delta``: ``rel_effect_size / rel_se`` against t with the Welch degrees of freedom of the
    absolute effect (as gbstats does); ``log``: ``log(m_t/m_c) / log_se`` against t with the
    log scale's own degrees of freedom. None when the relative effect is undefined.
    """
    if scale == "log":
        if effect.log_ratio is None:
            return None
        return t_pvalue(effect.log_ratio, effect.log_se, effect.log_df, alternative)
    if effect.rel_effect_size is None:
        return None
    return t_pvalue(effect.rel_effect_size, effect.rel_se, effect.df, alternative)


def t_pvalue(estimate: float, se: float, df: float, alternative: str) -> float:
    """p-value of ``estimate / se`` under a t distribution with ``df`` degrees of freedom.

    A zero standard error gives 1 for a zero estimate and 0 (or 1 on the wrong side of a
    one-sided alternative) otherwise.
    """
    if se <= 0:
        return _degenerate_pvalue(estimate, alternative)
    t = estimate / se
    if alternative == "greater":
        return float(stats.t.sf(t, df))
    if alternative == "less":
        return float(stats.t.cdf(t, df))
    return float(min(1.0, 2.0 * stats.t.sf(abs(t), df)))


def _interval(
    estimate: float, se: float, df: float, alpha: float, alternative: str
) -> tuple[float, float]:
    q = stats.t.ppf(1 - (alpha if alternative != "two-sided" else alpha / 2), df)
    half = float(q * se)
    return one_sided(estimate - half, estimate + half, alternative)


def _relative_interval(
    effect: Effect, alpha: float, alternative: str, scale: str
) -> tuple[float | None, float | None]:
    if scale == "log":
        if effect.log_ratio is None:
            return None, None
        lo, hi = _interval(effect.log_ratio, effect.log_se, effect.log_df, alpha, alternative)
        return expm1_bound(lo), expm1_bound(hi)
    if effect.rel_effect_size is None:
        return None, None
    return _interval(effect.rel_effect_size, effect.rel_se, effect.df, alpha, alternative)


def expm1_bound(x: float) -> float:
    """``exp(x) - 1`` that maps ``-inf`` to -1 and ``inf`` to ``inf``."""
    return math.expm1(x) if math.isfinite(x) else (-1.0 if x < 0 else x)


def _degenerate_pvalue(estimate: float, alternative: str) -> float:
    if estimate == 0:
        return 1.0
    if alternative == "greater":
        return 0.0 if estimate > 0 else 1.0
    if alternative == "less":
        return 0.0 if estimate < 0 else 1.0
    return 0.0
