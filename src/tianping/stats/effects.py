"""Absolute and relative effect of a treatment over the control, with their standard errors.

With ``m_c, m_t`` the arms' estimates and ``v_c, v_t`` their per-unit variances:

- absolute effect ``m_t - m_c`` with ``se**2 = v_t/n_t + v_c/n_c``;
- Welch–Satterthwaite degrees of freedom
  ``df = se**4 / ((v_t/n_t)**2/(n_t-1) + (v_c/n_c)**2/(n_c-1))``;
- relative effect ``m_t/m_c - 1`` with the delta-method variance
  ``v_t/(n_t m_c**2) + m_t**2 v_c/(n_c m_c**4)`` (GrowthBook, Eppo, Statsig);
- optionally on the log scale (tea-tasting): ``log(m_t/m_c)`` with variance
  ``v_t/(n_t m_t**2) + v_c/(n_c m_c**2)`` and its own Welch df, back-transformed with
  ``exp(.) - 1`` (asymmetric, never below -100%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tianping.stats.moments import ArmMoments


@dataclass(frozen=True)
class Effect:
    """The treatment-minus-control contrast and its uncertainty (normal approximation).

    Attributes:
        control: the control's moments.
        treatment: the treatment's moments.
        effect_size: ``m_t - m_c``.
        se: standard error of ``effect_size``.
        df: Welch–Satterthwaite degrees of freedom of ``effect_size``.
        rel_effect_size: ``m_t / m_c - 1`` (None when the control's estimate is 0).
        rel_se: delta-method standard error of ``rel_effect_size`` (None likewise).
        log_ratio: ``log(m_t / m_c)`` (None unless both estimates are positive).
        log_se: standard error of ``log_ratio``.
        log_df: Welch degrees of freedom of ``log_ratio``.
    """

    control: ArmMoments
    treatment: ArmMoments
    effect_size: float
    se: float
    df: float
    rel_effect_size: float | None
    rel_se: float | None
    log_ratio: float | None
    log_se: float | None
    log_df: float | None

    @property
    def n(self) -> int:
        """Units in both arms."""
        return self.control.n + self.treatment.n


def effect_of(control: ArmMoments, treatment: ArmMoments) -> Effect:
    """Contrast a treatment's moments with the control's.

    Args:
        control: the control arm's moments.
        treatment: the treatment arm's moments.

    >>> c = ArmMoments("control", 100, 10.0, 4.0)
    >>> t = ArmMoments("treatment", 100, 11.0, 4.0)
    >>> e = effect_of(c, t)
    >>> e.effect_size, round(e.se, 4), round(e.df, 1), round(e.rel_effect_size, 3)
    (1.0, 0.2828, 198.0, 0.1)
    """
    mc, mt = control.mean, treatment.mean
    se = math.sqrt(control.se2 + treatment.se2)
    df = welch_df(control.se2, control.n, treatment.se2, treatment.n)
    rel, rel_se = _relative(control, treatment)
    log_ratio, log_se, log_df = _log_relative(control, treatment)
    return Effect(control, treatment, mt - mc, se, df, rel, rel_se, log_ratio, log_se, log_df)


def _relative(control: ArmMoments, treatment: ArmMoments) -> tuple[float | None, float | None]:
    """Delta-method lift; None when the control's estimate is 0 or the lift overflows."""
    mc, mt = control.mean, treatment.mean
    try:
        ratio = mt / mc
        rel_se = math.hypot(math.sqrt(treatment.se2), ratio * math.sqrt(control.se2)) / abs(mc)
    except (ZeroDivisionError, OverflowError):
        return None, None
    if not (math.isfinite(ratio) and math.isfinite(rel_se)):
        return None, None
    return ratio - 1.0, rel_se


def _log_relative(control: ArmMoments, treatment: ArmMoments):
    """Log-scale lift, its SE and Welch df; Nones unless both estimates are positive."""
    mc, mt = control.mean, treatment.mean
    if not (mc > 0 and mt > 0):
        return None, None, None
    try:
        lc, lt = (math.sqrt(control.se2) / mc) ** 2, (math.sqrt(treatment.se2) / mt) ** 2
    except OverflowError:
        return None, None, None
    if not (math.isfinite(lc) and math.isfinite(lt)):
        return None, None, None
    return math.log(mt / mc), math.sqrt(lc + lt), welch_df(lc, control.n, lt, treatment.n)


def welch_df(se2_c: float, n_c: int, se2_t: float, n_t: int) -> float:
    """Welch–Satterthwaite degrees of freedom from the arms' squared standard errors.

    Falls back to ``n_c + n_t - 2`` when both variances are zero (the test is then
    degenerate anyway).
    """
    scale = max(se2_c, se2_t)
    if not scale > 0:
        return float(n_c + n_t - 2)
    c, t = se2_c / scale, se2_t / scale  # scaled so squares cannot overflow
    return (c + t) ** 2 / (c**2 / (n_c - 1) + t**2 / (n_t - 1))
