"""Posteriors of each arm's goal metric from its sufficient statistics (pure: numpy only).

- ``proportion``: Beta(prior_a + successes, prior_b + failures), conjugate and exact;
- ``mean``: Normal(mean, variance / n) by the central limit theorem;
- ``ratio``: Normal(sum_y / sum_d, delta-method variance) (same formula as
  :mod:`tianping.stats.moments`).

An arm with fewer than two units has no variance of its own: it borrows the pooled variance
of the other arms (one unit's worth of information), so a new arm is explored rather than
ignored or crowned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tianping.errors import InvalidInput
from tianping.stats.sufficient import ArmStats

METRIC_TYPES = ("proportion", "mean", "ratio")


@dataclass(frozen=True, slots=True)
class Posterior:
    """One arm's posterior of the goal metric.

    Attributes:
        name: the arm.
        kind: ``beta`` or ``normal``.
        a: Beta alpha, or the Normal mean.
        b: Beta beta, or the Normal standard deviation.
        n: units behind it.

    >>> p = Posterior("a", "beta", 3.0, 9.0, 10)
    >>> round(p.mean, 4), round(p.sd, 4)
    (0.25, 0.1201)
    """

    name: str
    kind: str
    a: float
    b: float
    n: int

    @property
    def mean(self) -> float:
        """The posterior mean of the arm's metric (a rate for ``beta``, a mean for ``normal``)."""
        if self.kind == "beta":
            return self.a / (self.a + self.b)
        return self.a

    @property
    def sd(self) -> float:
        """The posterior standard deviation."""
        if self.kind == "beta":
            s = self.a + self.b
            return math.sqrt(self.a * self.b / (s * s * (s + 1)))
        return self.b

    def sample(self, rng: np.random.Generator, draws: int) -> np.ndarray:
        """``draws`` values from the posterior."""
        if self.kind == "beta":
            return rng.beta(self.a, self.b, draws)
        return rng.normal(self.a, self.b, draws)


def check_metric_type(metric_type: str) -> str:
    """``metric_type`` when it is one the race engine models, else :class:`InvalidInput` listing them."""
    if metric_type not in METRIC_TYPES:
        raise InvalidInput(
            f"unknown metric type {metric_type!r}; use one of {', '.join(METRIC_TYPES)}",
            field="metric_type",
        )
    return metric_type


def posteriors(
    arms: Sequence[ArmStats],
    metric_type: str,
    *,
    prior: tuple[float, float] = (1.0, 1.0),
) -> list[Posterior]:
    """Each arm's posterior of the goal metric.

    Args:
        arms: per-arm sufficient statistics of the goal metric.
        metric_type: ``proportion``, ``mean`` or ``ratio``.
        prior: the Beta prior of proportions (uniform by default).

    Raises:
        InvalidInput: unknown metric type, a proportion outside ``[0, n]``, or a ratio arm
            without denominator sums.

    >>> [round(p.mean, 3) for p in posteriors([ArmStats("a", 98, 9)], "proportion")]
    [0.1]
    """
    check_metric_type(metric_type)
    if not arms:
        raise InvalidInput("a race needs at least one arm's statistics", field="arms")
    if metric_type == "proportion":
        return [_beta(arm, prior) for arm in arms]
    values = [_moments(arm, metric_type) for arm in arms]
    pooled = _pooled(values)
    return [_normal(arm, v, pooled) for arm, v in zip(arms, values, strict=True)]


def _beta(arm: ArmStats, prior: tuple[float, float]) -> Posterior:
    if not 0 <= arm.sum <= arm.n:
        raise InvalidInput(
            f"arm {arm.name!r}: successes {arm.sum} outside [0, n={arm.n}]", field="sum"
        )
    return Posterior(arm.name, "beta", prior[0] + arm.sum, prior[1] + arm.n - arm.sum, arm.n)


def _moments(arm: ArmStats, metric_type: str) -> tuple[float, float] | None:
    """(value, per-unit variance) of the arm, or None when it has fewer than two units."""
    if arm.n < 2:
        return None
    if metric_type == "mean":
        if arm.sum_sq is None:
            raise InvalidInput(f"arm {arm.name!r}: a mean needs sum_sq", field="sum_sq")
        return arm.mean, max(arm.variance, 0.0)
    if arm.den_sum is None or arm.den_sum_sq is None or arm.num_den_sum is None:
        raise InvalidInput(
            f"arm {arm.name!r}: a ratio needs den_sum, den_sum_sq and num_den_sum",
            field="den_sum",
        )
    d = arm.den_mean
    if d == 0:
        return None
    r = arm.ratio
    var = arm.variance - 2 * r * arm.num_den_covariance + r * r * arm.den_variance
    return r, max(var, 0.0) / (d * d)


def _pooled(values: list[tuple[float, float] | None]) -> tuple[float, float]:
    known = [v for v in values if v is not None]
    if not known:
        return 0.0, 1.0
    mean = float(np.mean([v[0] for v in known]))
    var = float(np.mean([v[1] for v in known]))
    return mean, var if var > 0 else 1.0


def _normal(arm: ArmStats, value: tuple[float, float] | None, pooled) -> Posterior:
    if value is None:
        return Posterior(arm.name, "normal", pooled[0], math.sqrt(pooled[1]), arm.n)
    mean, var = value
    # Ties (e.g. all-zero arms) must not be broken by argmax order: keep a tiny spread.
    sd = max(math.sqrt(var / arm.n), 1e-9 * (1.0 + abs(mean)))
    return Posterior(arm.name, "normal", mean, sd, arm.n)
