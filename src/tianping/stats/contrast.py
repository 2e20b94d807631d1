"""The result record every method returns for one treatment against the control."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from tianping.errors import InvalidInput

Alternative = Literal["two-sided", "greater", "less"]
ALTERNATIVES: tuple[str, ...] = ("two-sided", "greater", "less")
RELATIVE_SCALES: tuple[str, ...] = ("delta", "log")


@dataclass(frozen=True)
class Contrast:
    """Effect estimates with intervals and a p-value (and Bayesian extras when Bayesian).

    One-sided alternatives give one infinite bound (``-inf`` or ``inf``). Relative fields
    are None when the control's estimate is 0 (or, on the log scale, not positive).

    Attributes:
        effect_size: treatment minus control.
        effect_size_ci_lower: lower bound of the interval for ``effect_size``.
        effect_size_ci_upper: upper bound.
        rel_effect_size: treatment / control - 1.
        rel_effect_size_ci_lower: lower bound of the interval for ``rel_effect_size``.
        rel_effect_size_ci_upper: upper bound.
        pvalue: p-value of "no difference" on the absolute scale (tests ``effect_size``).
        rel_pvalue: p-value of "no difference" on the relative scale (tests
            ``rel_effect_size`` with the same standard error, degrees of freedom and scale as
            its interval, so it is below alpha exactly when that interval excludes 0); None
            when the relative effect is undefined.
        chance_to_win: Bayesian: posterior probability that the treatment is better.
        risk: Bayesian: expected relative loss if the treatment is shipped.
        risk_control: Bayesian: expected relative loss if the control is kept.
    """

    effect_size: float
    effect_size_ci_lower: float
    effect_size_ci_upper: float
    rel_effect_size: float | None
    rel_effect_size_ci_lower: float | None
    rel_effect_size_ci_upper: float | None
    pvalue: float
    rel_pvalue: float | None = None
    chance_to_win: float | None = None
    risk: float | None = None
    risk_control: float | None = None


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float in (0, 1), else ``InvalidInput``."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise InvalidInput(f"alpha must be a number in (0, 1), got {alpha!r}", field="alpha")
    return float(alpha)


def check_alternative(alternative: str) -> str:
    """``alternative`` if known, else ``InvalidInput``."""
    if alternative not in ALTERNATIVES:
        raise InvalidInput(
            f"unknown alternative {alternative!r}; use one of {', '.join(ALTERNATIVES)}",
            field="alternative",
        )
    return alternative


def check_relative_scale(scale: str) -> str:
    """``scale`` if it is ``delta`` or ``log``, else ``InvalidInput``."""
    if scale not in RELATIVE_SCALES:
        raise InvalidInput(
            f"unknown relative_scale {scale!r}; use one of {', '.join(RELATIVE_SCALES)}",
            field="relative_scale",
        )
    return scale


def one_sided(lower: float, upper: float, alternative: str) -> tuple[float, float]:
    """Replace the bound a one-sided alternative does not constrain with infinity."""
    if alternative == "greater":
        return lower, math.inf
    if alternative == "less":
        return -math.inf, upper
    return lower, upper
