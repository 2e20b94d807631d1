"""Power, sample size and minimum detectable effect (MDE), and the runtime they imply.

For a difference ``delta`` between a treatment and the control, with ``n_c`` control units
and ``n_t = ratio * n_c`` treatment units, the test statistic is normal with standard
deviation ``std_null / sqrt(n_c)`` under "no difference" and ``std_alt / sqrt(n_c)`` under
the alternative, and

    power = Phi((delta sqrt(n_c) - z std_null) / std_alt)  [+ the far tail if two-sided]

with ``z`` the ``1 - alpha/2`` (two-sided) or ``1 - alpha`` normal quantile.

- mean metrics: ``std_null = std_alt = sd * sqrt(1 + 1/ratio)`` (statsmodels
  ``NormalIndPower``); with ``distribution="t"`` the noncentral t of ``TTestIndPower``;
- proportions: ``std_null`` from the pooled rate ``(p_c + ratio p_t) / (1 + ratio)`` and
  ``std_alt = sqrt(p_c (1 - p_c) + p_t (1 - p_t) / ratio)`` (statsmodels
  ``power_proportions_2indep``, the classic Fleiss formula).

Sample size and MDE solve ``power = target`` numerically (Brent), so they are exact for the
two-sided power, far tail included. The runtime is the total units over the daily traffic.
With several treatment arms compared to one control, divide alpha yourself (e.g. Bonferroni)
or use Holm on the results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import optimize, stats

from tianping.errors import InvalidInput
from tianping.stats.contrast import check_alpha, check_alternative


@dataclass(frozen=True)
class PowerPlan:
    """A sample-size or MDE plan.

    Attributes:
        metric_type: ``mean`` or ``proportion``.
        baseline: the control's mean or rate.
        sd: per-unit standard deviation (mean metrics; the binomial one for proportions).
        mde: minimum detectable effect, absolute.
        rel_mde: ``mde / baseline``.
        alpha: significance level.
        power: probability of detecting ``mde``.
        alternative: ``two-sided``, ``greater`` or ``less``.
        ratio: treatment units per control unit.
        arms: number of arms (control included).
        n_control: control units.
        n_treatment: units per treatment arm.
        n_total: units over all arms.
        daily_units: eligible units per day over all arms, if given.
        days: days to reach ``n_total`` at ``daily_units`` (rounded up), if given.
    """

    metric_type: str
    baseline: float
    sd: float
    mde: float
    rel_mde: float
    alpha: float
    power: float
    alternative: str
    ratio: float
    arms: int
    n_control: int
    n_treatment: int
    n_total: int
    daily_units: float | None
    days: int | None


def power_of(
    metric_type: str,
    baseline: float,
    mde: float,
    n_control: float,
    *,
    sd: float | None = None,
    relative: bool = False,
    alpha: float = 0.05,
    ratio: float = 1.0,
    alternative: str = "two-sided",
    distribution: str = "normal",
) -> float:
    """Probability that the test detects an effect of size ``mde`` with ``n_control`` units.

    Args:
        metric_type: ``mean`` or ``proportion``.
        baseline: the control's mean (``mean``) or rate (``proportion``).
        mde: the effect to detect (absolute, or relative to ``baseline`` if ``relative``).
        n_control: control units (treatment arms get ``ratio * n_control``).
        sd: per-unit standard deviation, required for ``mean``.
        relative: read ``mde`` as a fraction of ``baseline``.
        alpha: significance level.
        ratio: treatment units per control unit.
        alternative: ``two-sided``, ``greater`` or ``less`` (``mde`` is then its magnitude).
        distribution: ``normal`` or ``t`` (mean metrics only).

    >>> round(power_of("mean", 10.0, 0.5, 400, sd=5.0), 4)
    0.293
    """
    alpha, alternative = check_alpha(alpha), check_alternative(alternative)
    delta = _absolute(metric_type, baseline, mde, relative, alternative)
    _check_positive(ratio, "ratio")
    _check_positive(n_control, "n_control")
    if distribution == "t" and metric_type == "mean":
        return _t_power(delta / _sd(metric_type, sd), n_control, ratio, alpha, alternative)
    if distribution not in ("normal", "t"):
        raise InvalidInput(
            f"unknown distribution {distribution!r}; use normal or t", field="distribution"
        )
    std_null, std_alt = _stds(metric_type, baseline, delta, sd, ratio, alternative)
    return _normal_power(delta, n_control, std_null, std_alt, alpha, alternative)


def sample_size(
    metric_type: str,
    baseline: float,
    mde: float,
    *,
    sd: float | None = None,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    arms: int = 2,
    alternative: str = "two-sided",
    distribution: str = "normal",
    daily_units: float | None = None,
) -> PowerPlan:
    """Units needed to detect ``mde`` with the given power, and the runtime.

    Args:
        metric_type: ``mean`` or ``proportion``.
        baseline: the control's mean or rate.
        mde: the effect to detect (absolute, or relative if ``relative``).
        sd: per-unit standard deviation, required for ``mean``.
        relative: read ``mde`` as a fraction of ``baseline``.
        alpha: significance level.
        power: target power in (0, 1).
        ratio: treatment units per control unit.
        arms: number of arms including the control (each treatment gets ``ratio * n_c``).
        alternative: ``two-sided``, ``greater`` or ``less``.
        distribution: ``normal`` or ``t`` (mean metrics only).
        daily_units: eligible units per day over all arms, for the runtime.

    >>> sample_size("proportion", 0.1, 0.02, alpha=0.05, power=0.8).n_control
    3841
    """
    target = _check_power(power)
    kwargs = dict(
        sd=sd,
        relative=relative,
        alpha=alpha,
        ratio=ratio,
        alternative=alternative,
        distribution=distribution,
    )

    def gap(n: float) -> float:
        return power_of(metric_type, baseline, mde, n, **kwargs) - target

    hi = 2.0
    while gap(hi) < 0:
        hi *= 4
        if hi > 1e15:
            raise InvalidInput("no feasible sample size: the effect is too small", field="mde")
    n_c = 2.0 if gap(2.0) >= 0 else optimize.brentq(gap, 2.0, hi, xtol=1e-6)
    delta = _absolute(metric_type, baseline, mde, relative, alternative)
    return _plan(
        metric_type,
        baseline,
        sd,
        delta,
        alpha,
        target,
        alternative,
        ratio,
        arms,
        math.ceil(n_c - 1e-9),
        daily_units,
    )


def minimum_detectable_effect(
    metric_type: str,
    baseline: float,
    n_control: float,
    *,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    arms: int = 2,
    alternative: str = "two-sided",
    distribution: str = "normal",
    daily_units: float | None = None,
) -> PowerPlan:
    """Smallest effect (an increase, or a decrease for ``less``) detectable with the power.

    Args:
        metric_type: ``mean`` or ``proportion``.
        baseline: the control's mean or rate.
        n_control: control units.
        sd: per-unit standard deviation, required for ``mean``.
        alpha: significance level.
        power: target power in (0, 1).
        ratio: treatment units per control unit.
        arms: number of arms including the control.
        alternative: ``two-sided``, ``greater`` or ``less``.
        distribution: ``normal`` or ``t`` (mean metrics only).
        daily_units: eligible units per day over all arms, for the runtime.
    """
    target = _check_power(power)
    kwargs = dict(
        sd=sd, alpha=alpha, ratio=ratio, alternative=alternative, distribution=distribution
    )

    def gap(delta: float) -> float:
        return power_of(metric_type, baseline, delta, n_control, **kwargs) - target

    if metric_type == "proportion":
        room = baseline if alternative == "less" else 1.0 - baseline
        hi = room - 1e-12
    else:
        hi = _sd(metric_type, sd)
        while gap(hi) < 0:
            hi *= 4
    if gap(hi) < 0:
        raise InvalidInput(
            f"no effect is detectable with power {target} at n_control={n_control}",
            field="n_control",
        )
    delta = optimize.brentq(gap, 1e-12 * max(abs(hi), 1.0), hi, xtol=1e-12)
    return _plan(
        metric_type,
        baseline,
        sd,
        delta,
        alpha,
        target,
        alternative,
        ratio,
        arms,
        math.ceil(n_control),
        daily_units,
    )


def runtime_days(n_total: float, daily_units: float) -> int:
    """Whole days needed to collect ``n_total`` units at ``daily_units`` a day.

    >>> runtime_days(10_000, 3_000)
    4
    """
    _check_positive(daily_units, "daily_units")
    return math.ceil(n_total / daily_units - 1e-9)


def _plan(
    metric_type, baseline, sd, delta, alpha, power, alternative, ratio, arms, n_c, daily_units
) -> PowerPlan:
    if not isinstance(arms, int) or arms < 2:
        raise InvalidInput(f"arms must be an integer >= 2, got {arms!r}", field="arms")
    n_t = math.ceil(ratio * n_c - 1e-9)
    n_total = n_c + (arms - 1) * n_t
    unit_sd = (
        _sd(metric_type, sd) if metric_type == "mean" else math.sqrt(baseline * (1 - baseline))
    )
    return PowerPlan(
        metric_type=metric_type,
        baseline=baseline,
        sd=unit_sd,
        mde=abs(delta),
        rel_mde=abs(delta) / baseline if baseline else math.inf,
        alpha=alpha,
        power=power,
        alternative=alternative,
        ratio=ratio,
        arms=arms,
        n_control=n_c,
        n_treatment=n_t,
        n_total=n_total,
        daily_units=daily_units,
        days=None if daily_units is None else runtime_days(n_total, daily_units),
    )


def _absolute(
    metric_type: str, baseline: float, mde: float, relative: bool, alternative: str
) -> float:
    if metric_type not in ("mean", "proportion"):
        raise InvalidInput(
            f"power is computed for mean and proportion metrics, not {metric_type!r}",
            field="metric_type",
        )
    if metric_type == "proportion" and not 0 < baseline < 1:
        raise InvalidInput(
            f"a proportion's baseline must be in (0, 1), got {baseline!r}", field="baseline"
        )
    delta = abs(mde * baseline if relative else mde)
    if not delta > 0:
        raise InvalidInput(f"mde must be non-zero, got {mde!r}", field="mde")
    if metric_type == "proportion":
        p_t = baseline - delta if alternative == "less" else baseline + delta
        if not 0 < p_t < 1:
            raise InvalidInput(
                f"baseline {baseline} with mde {delta:g} leaves the rate outside (0, 1)",
                field="mde",
            )
    return delta


def _stds(metric_type, baseline, delta, sd, ratio, alternative) -> tuple[float, float]:
    if metric_type == "mean":
        s = _sd(metric_type, sd) * math.sqrt(1 + 1 / ratio)
        return s, s
    p_c = baseline
    p_t = baseline - delta if alternative == "less" else baseline + delta
    pooled = (p_c + ratio * p_t) / (1 + ratio)
    std_null = math.sqrt(pooled * (1 - pooled) * (1 + 1 / ratio))
    std_alt = math.sqrt(p_c * (1 - p_c) + p_t * (1 - p_t) / ratio)
    return std_null, std_alt


def _normal_power(delta, n, std_null, std_alt, alpha, alternative) -> float:
    shift = delta * math.sqrt(n) / std_alt
    if alternative == "two-sided":
        z = stats.norm.isf(alpha / 2) * std_null / std_alt
        return float(stats.norm.sf(z - shift) + stats.norm.cdf(-z - shift))
    z = stats.norm.isf(alpha) * std_null / std_alt
    return float(stats.norm.sf(z - shift))


def _t_power(effect_size, n_c, ratio, alpha, alternative) -> float:
    n_t = ratio * n_c
    df = n_c + n_t - 2
    nc = effect_size * math.sqrt(1.0 / (1.0 / n_c + 1.0 / n_t))
    if alternative == "two-sided":
        crit = stats.t.isf(alpha / 2, df)
        return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))
    return float(stats.nct.sf(stats.t.isf(alpha, df), df, nc))


def _sd(metric_type: str, sd: float | None) -> float:
    if sd is None:
        raise InvalidInput(
            f"a {metric_type} metric needs sd (the per-unit standard deviation)", field="sd"
        )
    _check_positive(sd, "sd")
    return float(sd)


def _check_positive(value, field: str) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value > 0)
    ):
        raise InvalidInput(f"{field} must be a positive number, got {value!r}", field=field)


def _check_power(power: float) -> float:
    if isinstance(power, bool) or not isinstance(power, int | float) or not 0 < power < 1:
        raise InvalidInput(f"power must be a number in (0, 1), got {power!r}", field="power")
    return float(power)
