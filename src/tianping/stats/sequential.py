"""Sequential testing: always-valid p-values and confidence sequences (normal mixture).

The mixture sequential probability ratio test (mSPRT) of Johari, Pekelis and Walsh (2017,
"Peeking at A/B tests") puts a normal mixing distribution ``N(0, tau**2)`` on the effect
and compares the mixture likelihood with the null. For an estimate ``d`` with variance
``V = se**2`` the mixture likelihood ratio is

    Lambda = sqrt(V / (V + tau**2)) * exp(tau**2 d**2 / (2 V (V + tau**2)))

and ``p = min(1, 1/Lambda)`` is valid at any stopping time: peeking every day keeps the
false-positive rate at most alpha. Inverting the test gives the two-sided confidence
sequence of Howard, Ramdas, McAuliffe and Sekhon (2021, eq. 14 family),
``d +- sqrt(V (1 + 1/(N rho2)) log((N rho2 + 1) / alpha**2))``.

Mixing variance. We set ``tau**2 = rho2 * s2`` where ``s2 = V * N`` is the per-unit
variance of the contrast and ``N`` the units in both arms, so ``rho2`` is the mixing
variance of the standardised effect. By default ``rho2`` is chosen so the confidence
sequence is tightest when ``N = tuning_n`` (Howard et al.):
``rho2 = (-2 log a + log(1 - 2 log a)) / tuning_n`` with ``a = alpha`` (two-sided) or
``2 alpha`` (one-sided). This is GrowthBook's parameterisation (its
``sequential_tuning_parameter``, default 5000), so the numbers agree with gbstats. Pass
``mixing_variance`` to fix ``rho2`` directly.

One-sided tests use Howard et al.'s one-sided normal-mixture boundary
``sqrt(s2 * 2 (N rho2 + 1) / (N**2 rho2) * log(1 + sqrt(N rho2 + 1) / (2 alpha)))``; the
p-value is the smallest alpha whose boundary excludes zero (closed form).

The estimate's variance is plugged in from the data, as in gbstats and Johari et al.;
over a series of looks report the running minimum of the p-values
(:func:`always_valid_path`). The relative p-value is the same mixture test on the relative
effect and its standard error (delta method, or the log ratio), so it is below alpha exactly
when the relative confidence sequence excludes zero.
"""

from __future__ import annotations

import numpy as np

from tianping.errors import InvalidInput
from tianping.stats.contrast import (
    Contrast,
    check_alpha,
    check_alternative,
    check_relative_scale,
    one_sided,
)
from tianping.stats.effects import Effect
from tianping.stats.frequentist import expm1_bound

DEFAULT_TUNING_N = 5000.0


def mixture_rho2(
    alpha: float, tuning_n: float = DEFAULT_TUNING_N, *, two_sided: bool = True
) -> float:
    """Mixing variance ``rho2`` of the standardised effect tightest at ``tuning_n`` units.

    Args:
        alpha: significance level.
        tuning_n: total units (both arms) at which the confidence sequence is tightest.
        two_sided: False for a one-sided test (uses ``2 alpha``).
    """
    if not tuning_n > 0:
        raise InvalidInput(f"tuning_n must be positive, got {tuning_n!r}", field="tuning_n")
    a = alpha if two_sided else 2 * alpha
    return float((-2 * np.log(a) + np.log(1 - 2 * np.log(a))) / tuning_n)


def mixture_halfwidth(se, n, alpha: float, rho2: float, *, two_sided: bool = True):
    """Half-width of the normal-mixture confidence sequence (NumPy-vectorised).

    Args:
        se: standard error(s) of the estimate.
        n: total units (both arms) at each look.
        alpha: significance level.
        rho2: mixing variance of the standardised effect (see :func:`mixture_rho2`).
        two_sided: False for the one-sided boundary.
    """
    se, n = np.asarray(se, dtype=float), np.asarray(n, dtype=float)
    s2 = se**2 * n
    scale = 2 * (n * rho2 + 1) / (n**2 * rho2)
    if two_sided:
        log_term = np.log(np.sqrt(n * rho2 + 1) / alpha)
    else:
        log_term = np.log(1 + np.sqrt(n * rho2 + 1) / (2 * alpha))
    return np.sqrt(s2 * scale * log_term)


def mixture_pvalue(estimate, se, n, rho2: float, alternative: str = "two-sided"):
    """Always-valid p-value of the mixture test of "no difference" (NumPy-vectorised).

    Args:
        estimate: the effect estimate(s).
        se: its standard error(s).
        n: total units (both arms).
        rho2: mixing variance of the standardised effect.
        alternative: ``two-sided``, ``greater`` or ``less``.
    """
    estimate = np.asarray(estimate, dtype=float)
    se, n = np.asarray(se, dtype=float), np.asarray(n, dtype=float)
    nr = n * rho2 + 1
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z2 = np.where(se > 0, estimate**2 / se**2, np.where(estimate == 0, 0.0, np.inf))
        if alternative == "two-sided":
            p = np.sqrt(nr) * np.exp(-(n * rho2) * z2 / (2 * nr))
        else:
            c = 2 * nr / (n * rho2)
            p = np.sqrt(nr) / (2 * np.expm1(z2 / c))
            right_side = estimate > 0 if alternative == "greater" else estimate < 0
            p = np.where(right_side, p, 1.0)
    p = np.minimum(np.nan_to_num(p, nan=1.0, posinf=1.0), 1.0)
    return float(p) if p.ndim == 0 else p


def sequential_test(
    effect: Effect,
    *,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    tuning_n: float = DEFAULT_TUNING_N,
    mixing_variance: float | None = None,
    relative_scale: str = "delta",
) -> Contrast:
    """Always-valid p-value and confidence sequences for one contrast at the current look.

    Args:
        effect: the contrast (see :func:`~tianping.stats.effects.effect_of`).
        alpha: significance level.
        alternative: ``two-sided``, ``greater`` or ``less``.
        tuning_n: total units at which the sequences are tightest (sets the mixing variance).
        mixing_variance: ``rho2`` directly, overriding ``tuning_n``.
        relative_scale: ``delta`` or ``log`` for the relative sequence.
    """
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    relative_scale = check_relative_scale(relative_scale)
    two_sided = alternative == "two-sided"
    rho2 = _rho2(alpha, tuning_n, mixing_variance, two_sided)
    n = effect.n

    def bounds(estimate: float, se: float) -> tuple[float, float]:
        half = float(mixture_halfwidth(se, n, alpha, rho2, two_sided=two_sided))
        return one_sided(estimate - half, estimate + half, alternative)

    lower, upper = bounds(effect.effect_size, effect.se)
    rel_lower = rel_upper = rel_p = None
    if relative_scale == "log" and effect.log_ratio is not None:
        lo, hi = bounds(effect.log_ratio, effect.log_se)
        rel_lower, rel_upper = expm1_bound(lo), expm1_bound(hi)
        rel_p = mixture_pvalue(effect.log_ratio, effect.log_se, n, rho2, alternative)
    elif relative_scale == "delta" and effect.rel_effect_size is not None:
        rel_lower, rel_upper = bounds(effect.rel_effect_size, effect.rel_se)
        rel_p = mixture_pvalue(effect.rel_effect_size, effect.rel_se, n, rho2, alternative)
    return Contrast(
        effect_size=effect.effect_size,
        effect_size_ci_lower=lower,
        effect_size_ci_upper=upper,
        rel_effect_size=effect.rel_effect_size,
        rel_effect_size_ci_lower=rel_lower,
        rel_effect_size_ci_upper=rel_upper,
        pvalue=mixture_pvalue(effect.effect_size, effect.se, n, rho2, alternative),
        rel_pvalue=rel_p,
    )


def always_valid_path(pvalues) -> np.ndarray:
    """Running minimum of the p-values of successive looks: the always-valid p-value path.

    >>> always_valid_path([0.8, 0.3, 0.5, 0.04]).tolist()
    [0.8, 0.3, 0.3, 0.04]
    """
    return np.minimum.accumulate(np.asarray(pvalues, dtype=float))


def _rho2(alpha: float, tuning_n: float, mixing_variance: float | None, two_sided: bool) -> float:
    if mixing_variance is None:
        return mixture_rho2(alpha, tuning_n, two_sided=two_sided)
    if not mixing_variance > 0:
        raise InvalidInput(
            f"mixing_variance must be positive, got {mixing_variance!r}", field="mixing_variance"
        )
    return float(mixing_variance)
