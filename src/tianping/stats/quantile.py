"""Quantile metrics (median, p90) from order statistics the warehouse picks (pure).

Method: **Woodruff's interval** (Woodruff 1952, "Confidence intervals for medians and other
position measures", JASA 47:635–646), as GrowthBook's gbstats uses it for its quantile
metrics. The empirical CDF at the sample quantile has standard error
``s = sqrt(ν (1 - ν) / n)``; inverting the CDF's 95 % interval gives the order statistics
``L = X(⌈n (ν - z s)⌉)`` and ``U = X(⌈n (ν + z s)⌉)`` (``z = Φ⁻¹(0.975)``), and
``(U - L) / (2 z)`` estimates the quantile's standard error with no density estimate. The
warehouse computes ``n``, ``X(⌈n ν⌉)``, ``L`` and ``U`` per arm in one sort (a window rank),
so the method is valid for samples of any size the warehouse holds (Sitter & Wu 2001 show
the interval is asymptotically correct).

Events clustered in units (orders of a buyer: the buyer was randomised, not the order) make
the CDF's variance larger than ``ν (1 - ν) / n``. With ``c_i`` the unit's events at or below
the quantile and ``m_i`` its events, ``F̂ = Σc / Σm`` is a ratio over units whose delta-method
variance replaces the binomial one; the quantile's variance is scaled by the same factor
(gbstats' ``QuantileClusteredStatistic``).

Each arm becomes :class:`~tianping.stats.moments.ArmMoments` ``(n, q̂, v)`` with
``v = (n - 1) ((U - L) / (2 z))² · deff`` (gbstats' per-unit scale, so ``v / n`` is the
squared standard error), and the effect, relative effect (delta method), intervals and
p-values follow as for every other metric.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from tianping.errors import InvalidInput
from tianping.stats.moments import ArmMoments

#: The quantile of the standard normal that picks the order statistics (a 95 % interval of
#: the CDF); the standard error estimate does not depend on the analysis's alpha.
Z_WOODRUFF = float(stats.norm.ppf(0.975))

_CLUSTER_FIELDS = ("units", "below_sum", "below_sum_sq", "events_sum_sq", "below_events_sum")


@dataclass(frozen=True)
class QuantileArm:
    """One arm of a quantile metric, as the warehouse returns it.

    Attributes:
        name: the arm's name.
        n: events (orders) with a value.
        level: the quantile's level ``ν`` in (0, 1), e.g. 0.9 for p90.
        quantile: ``X(⌈n ν⌉)``, the sample quantile.
        quantile_lower: ``X(⌈n (ν - z s)⌉)`` (see :func:`woodruff_ranks`).
        quantile_upper: ``X(⌈n (ν + z s)⌉)``.
        units: clustered events: the units (buyers) the events belong to.
        below_sum: clustered: ``Σ c_i``, events at or below the quantile.
        below_sum_sq: clustered: ``Σ c_i²``.
        events_sum_sq: clustered: ``Σ m_i²`` (``Σ m_i`` is ``n``).
        below_events_sum: clustered: ``Σ c_i m_i``.
    """

    name: str
    n: int
    level: float
    quantile: float
    quantile_lower: float
    quantile_upper: float
    units: int | None = None
    below_sum: float | None = None
    below_sum_sq: float | None = None
    events_sum_sq: float | None = None
    below_events_sum: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInput("every arm needs a non-empty name", field="name")
        for f in ("n", "level", "quantile", "quantile_lower", "quantile_upper", *_CLUSTER_FIELDS):
            value = getattr(self, f)
            if value is not None and (isinstance(value, bool) or not math.isfinite(float(value))):
                raise InvalidInput(f"arm {self.name!r}: {f} must be a finite number", field=f)
        if self.n != int(self.n) or self.n < 0:
            raise InvalidInput(f"arm {self.name!r}: n must be a whole number", field="n")
        object.__setattr__(self, "n", int(self.n))

    @property
    def clustered(self) -> bool:
        """Whether the cluster sums are given (then the CDF's variance is the clustered one)."""
        return self.units is not None

    @property
    def mean(self) -> float:
        """The arm's estimate (its quantile), under the name the report's tables read."""
        return float(self.quantile)


def woodruff_ranks(n: int, level: float, z: float = Z_WOODRUFF) -> tuple[int, int, int]:
    """1-based ranks of the lower bound, the quantile and the upper bound among ``n`` values.

    ``⌈n p⌉`` clipped to ``[1, n]`` for ``p = ν - z s``, ``ν``, ``ν + z s`` with
    ``s = sqrt(ν (1 - ν) / n)``. The warehouse query computes the same expression.

    >>> woodruff_ranks(1000, 0.5)
    (470, 500, 531)
    """
    s = math.sqrt(level * (1.0 - level) / n)
    return tuple(min(max(math.ceil(n * p), 1), n) for p in (level - z * s, level, level + z * s))


def validate_quantile_arms(arms: Sequence[QuantileArm]) -> None:
    """Check arms of a quantile metric; raise ``InvalidInput`` naming the arm and field."""
    if len(arms) < 2:
        raise InvalidInput(
            f"need at least 2 arms (a control and a treatment), got {len(arms)}", field="arms"
        )
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise InvalidInput("arm names must be unique", field="arms")
    levels = {a.level for a in arms}
    if len(levels) > 1:
        raise InvalidInput("every arm must have the same quantile level", field="level")
    for a in arms:
        _validate(a)


def _validate(a: QuantileArm) -> None:
    if not 0 < a.level < 1:
        raise InvalidInput(
            f"arm {a.name!r}: level must lie in (0, 1), got {a.level}", field="level"
        )
    z2 = Z_WOODRUFF**2
    # below this n the interval's ranks fall outside the sample (gbstats' limit too)
    minimum = max(z2 * a.level / (1 - a.level), z2 * (1 - a.level) / a.level)
    if a.n <= minimum:
        raise InvalidInput(
            f"arm {a.name!r}: {a.n} values are too few for the {a.level:g} quantile's interval "
            f"(need more than {math.floor(minimum)})",
            field="n",
        )
    if not a.quantile_lower <= a.quantile <= a.quantile_upper:
        raise InvalidInput(
            f"arm {a.name!r}: need quantile_lower <= quantile <= quantile_upper, got "
            f"{a.quantile_lower:g}, {a.quantile:g}, {a.quantile_upper:g}",
            field="quantile",
        )
    given = [f for f in _CLUSTER_FIELDS if getattr(a, f) is not None]
    if given and len(given) != len(_CLUSTER_FIELDS):
        missing = [f for f in _CLUSTER_FIELDS if getattr(a, f) is None]
        raise InvalidInput(
            f"arm {a.name!r}: clustered quantiles need all of {', '.join(_CLUSTER_FIELDS)}; "
            f"missing {', '.join(missing)}",
            field=missing[0],
        )
    if a.clustered and a.units < 2:
        raise InvalidInput(f"arm {a.name!r}: units must be at least 2", field="units")


def quantile_moments(arm: QuantileArm) -> ArmMoments:
    """The arm's quantile and its per-event variance (Woodruff; clustered if the sums are given).

    >>> m = quantile_moments(QuantileArm("c", 11054, 0.9, 7.158, 7.0988, 7.2172))
    >>> round(m.mean, 3), round((m.variance / m.n) ** 0.5, 5)
    (7.158, 0.0302)
    """
    half = (arm.quantile_upper - arm.quantile_lower) / (2.0 * Z_WOODRUFF)
    variance = (arm.n - 1) * half * half
    if arm.clustered:
        variance *= _design_effect(arm)
    return ArmMoments(arm.name, arm.n, float(arm.quantile), variance)


def _design_effect(arm: QuantileArm) -> float:
    """Clustered over binomial variance of the empirical CDF at the quantile."""
    k = arm.units
    mu_c, mu_m = arm.below_sum / k, arm.n / k
    scale = k / (k - 1)
    var_c = (arm.below_sum_sq / k - mu_c * mu_c) * scale
    var_m = (arm.events_sum_sq / k - mu_m * mu_m) * scale
    cov = (arm.below_events_sum / k - mu_c * mu_m) * scale
    clustered = (var_c - 2 * mu_c * cov / mu_m + mu_c**2 * var_m / mu_m**2) / (k * mu_m**2)
    binomial = arm.level * (1.0 - arm.level) / arm.n
    return max(clustered, 0.0) / binomial
