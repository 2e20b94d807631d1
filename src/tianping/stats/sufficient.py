"""Per-arm sufficient statistics: the only thing the warehouse sends to the statistics.

One :class:`ArmStats` holds what one grouped query returns for one arm of one metric: the
unit count and sums of the unit-level value ``y``, plus, when needed, sums for a ratio
metric's denominator ``d`` and for a pre-exposure covariate ``x`` (CUPED). Everything else
(means, variances, covariances) is derived from these sums.

Moments use the divisor ``n - 1`` (sample moments) except for proportions, whose variance is
the binomial ``p (1 - p)`` (divisor ``n``), as GrowthBook and most A/B tools do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Literal

import numpy as np

from tianping.errors import InvalidInput

MetricType = Literal["mean", "proportion", "ratio"]
METRIC_TYPES: tuple[str, ...] = ("mean", "proportion", "ratio")

# Relative tolerance for "a variance below zero is rounding, not an inconsistency".
_REL_TOL = 1e-8

_SUM_FIELDS = (
    "sum",
    "sum_sq",
    "den_sum",
    "den_sum_sq",
    "num_den_sum",
    "pre_sum",
    "pre_sum_sq",
    "pre_cross_sum",
    "pre_den_cross_sum",
)


@dataclass(frozen=True)
class CovariateSums:
    """One arm's sums of ``k`` covariates, for regression adjustment.

    Attributes:
        names: the covariates' names (the same in every arm, in the same order).
        sum: ``Σ x_j`` (length k).
        cross: ``Σ x_j x_l`` (k × k, symmetric).
        y_cross: ``Σ y x_j`` with the metric's unit value ``y`` (the ratio's numerator).
        den_cross: ratio metrics: ``Σ d x_j`` with the denominator ``d``.
    """

    names: tuple[str, ...]
    sum: tuple[float, ...]
    cross: tuple[tuple[float, ...], ...]
    y_cross: tuple[float, ...]
    den_cross: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        k = len(self.names)
        if k == 0:
            raise InvalidInput("covariates: at least one covariate is needed", field="covariates")
        if len(set(self.names)) != k:
            raise InvalidInput("covariates: names must be unique", field="covariates")
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        object.__setattr__(self, "sum", _vector(self.sum, k, "covariates.sum"))
        object.__setattr__(self, "y_cross", _vector(self.y_cross, k, "covariates.y_cross"))
        if self.den_cross is not None:
            object.__setattr__(
                self, "den_cross", _vector(self.den_cross, k, "covariates.den_cross")
            )
        rows = self.cross if isinstance(self.cross, list | tuple) else None
        if rows is None or len(rows) != k:
            raise InvalidInput(
                f"covariates.cross must be a {k} x {k} matrix (one row per covariate)",
                field="covariates.cross",
            )
        matrix = tuple(_vector(r, k, "covariates.cross") for r in rows)
        if not np.allclose(np.array(matrix), np.array(matrix).T, rtol=1e-9, atol=1e-9):
            raise InvalidInput("covariates.cross must be symmetric", field="covariates.cross")
        object.__setattr__(self, "cross", matrix)

    def __add__(self, other: CovariateSums) -> CovariateSums:
        if self.names != other.names:
            raise InvalidInput("arms have different covariates", field="covariates")
        den = (
            None
            if self.den_cross is None or other.den_cross is None
            else tuple(np.add(self.den_cross, other.den_cross))
        )
        return CovariateSums(
            self.names,
            tuple(np.add(self.sum, other.sum)),
            tuple(map(tuple, np.add(self.cross, other.cross))),
            tuple(np.add(self.y_cross, other.y_cross)),
            den,
        )


@dataclass(frozen=True)
class ArmStats:
    """Sufficient statistics of one arm for one metric.

    Args:
        name: the arm's name (``control``, ``treatment``, ...).
        n: number of units in the arm.
        sum: sum of the unit values ``y`` (the numerator for ratio metrics).
        sum_sq: sum of ``y**2``; may be omitted for proportions (then ``y**2 == y``).
        den_sum: ratio metrics: sum of the denominators ``d``.
        den_sum_sq: ratio metrics: sum of ``d**2``.
        num_den_sum: ratio metrics: sum of ``y*d``.
        pre_sum: CUPED: sum of the pre-exposure covariate ``x``.
        pre_sum_sq: CUPED: sum of ``x**2``.
        pre_cross_sum: CUPED: sum of ``y*x``.
        pre_den_cross_sum: CUPED on a ratio metric: sum of ``d*x``.
        covariates: regression adjustment: the sums of many covariates
            (:class:`CovariateSums`).

    Values may be ints, floats, ``Decimal`` (warehouse money sums) or NumPy scalars; they
    are stored as ``int`` (n) and ``float``. Non-finite values and a negative or fractional
    ``n`` raise :class:`~tianping.errors.InvalidInput` naming the arm and field.

    >>> a = ArmStats("control", n=4, sum=10.0, sum_sq=30.0)
    >>> a.mean, round(a.variance, 4)
    (2.5, 1.6667)
    """

    name: str
    n: int
    sum: float
    sum_sq: float | None = None
    den_sum: float | None = None
    den_sum_sq: float | None = None
    num_den_sum: float | None = None
    pre_sum: float | None = None
    pre_sum_sq: float | None = None
    pre_cross_sum: float | None = None
    pre_den_cross_sum: float | None = None
    covariates: CovariateSums | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInput("every arm needs a non-empty name", field="name")
        if self.covariates is not None and not isinstance(self.covariates, CovariateSums):
            raise InvalidInput(
                f"arm {self.name!r}: covariates must be CovariateSums", field="covariates"
            )
        object.__setattr__(self, "n", _as_count(self.n, self.name))
        for f in _SUM_FIELDS:
            value = getattr(self, f)
            if value is not None:
                object.__setattr__(self, f, _as_number(value, self.name, f))

    # -- the metric value y -------------------------------------------------------------
    @property
    def mean(self) -> float:
        """Mean of ``y`` per unit (for ratio metrics: the numerator's mean per unit)."""
        return self.sum / self.n

    @property
    def variance(self) -> float:
        """Sample variance of ``y`` (divisor ``n - 1``)."""
        return _cov(self.sum_sq_or_sum, self.sum, self.sum, self.n)

    @property
    def sum_sq_or_sum(self) -> float:
        """``sum_sq``, or ``sum`` when it was omitted (0/1 values)."""
        return self.sum if self.sum_sq is None else self.sum_sq

    # -- ratio metrics --------------------------------------------------------------------
    @property
    def den_mean(self) -> float:
        """Mean of the denominator ``d`` per unit."""
        return _need(self, "den_sum") / self.n

    @property
    def den_variance(self) -> float:
        """Sample variance of ``d``."""
        den_sum = _need(self, "den_sum")
        return _cov(_need(self, "den_sum_sq"), den_sum, den_sum, self.n)

    @property
    def num_den_covariance(self) -> float:
        """Sample covariance of ``y`` and ``d``."""
        return _cov(_need(self, "num_den_sum"), self.sum, _need(self, "den_sum"), self.n)

    @property
    def ratio(self) -> float:
        """The ratio metric's value ``sum(y) / sum(d)``."""
        return self.sum / _need(self, "den_sum")

    # -- CUPED covariate x ----------------------------------------------------------------
    @property
    def pre_mean(self) -> float:
        """Mean of the covariate ``x``."""
        return _need(self, "pre_sum") / self.n

    @property
    def pre_variance(self) -> float:
        """Sample variance of ``x``."""
        pre_sum = _need(self, "pre_sum")
        return _cov(_need(self, "pre_sum_sq"), pre_sum, pre_sum, self.n)

    @property
    def pre_covariance(self) -> float:
        """Sample covariance of ``y`` and ``x``."""
        return _cov(_need(self, "pre_cross_sum"), self.sum, _need(self, "pre_sum"), self.n)

    @property
    def pre_den_covariance(self) -> float:
        """Sample covariance of ``d`` and ``x``."""
        return _cov(
            _need(self, "pre_den_cross_sum"), _need(self, "den_sum"), _need(self, "pre_sum"), self.n
        )

    def __add__(self, other: ArmStats) -> ArmStats:
        """Pool two arms (sums add); a field missing from either is missing from the result."""
        merged = {
            f: (
                None
                if getattr(self, f) is None or getattr(other, f) is None
                else getattr(self, f) + getattr(other, f)
            )
            for f in _SUM_FIELDS
        }
        if self.sum_sq is None and other.sum_sq is None:
            merged["sum_sq"] = None
        elif merged["sum_sq"] is None:
            merged["sum_sq"] = self.sum_sq_or_sum + other.sum_sq_or_sum
        covariates = (
            None
            if self.covariates is None or other.covariates is None
            else self.covariates + other.covariates
        )
        return ArmStats(
            name=f"{self.name}+{other.name}", n=self.n + other.n, covariates=covariates, **merged
        )


def arm_field_names() -> tuple[str, ...]:
    """The fields an arm may carry (``name``, ``n`` and the sums), in documented order."""
    return tuple(f.name for f in fields(ArmStats))


def required_fields(metric_type: str, *, cuped: bool) -> tuple[str, ...]:
    """The sums a metric type needs (beyond ``n`` and ``sum``).

    Args:
        metric_type: ``mean``, ``proportion`` or ``ratio``.
        cuped: whether the covariate sums are needed too.
    """
    needed: list[str] = [] if metric_type == "proportion" else ["sum_sq"]
    if metric_type == "ratio":
        needed += ["den_sum", "den_sum_sq", "num_den_sum"]
    if cuped:
        needed += ["pre_sum", "pre_sum_sq", "pre_cross_sum"]
        if metric_type == "ratio":
            needed.append("pre_den_cross_sum")
    return tuple(needed)


def validate_arms(arms: Sequence[ArmStats], metric_type: str, *, cuped: bool = False) -> None:
    """Check that arms can be analysed as ``metric_type``; raise ``InvalidInput`` if not.

    Checks: at least two arms with unique names; ``n >= 2`` per arm; the sums the metric
    type needs are present; every variance implied by the sums is non-negative (beyond
    rounding) and every correlation lies in [-1, 1]; proportions have ``0 <= sum <= n`` and
    ``sum_sq == sum``; ratio denominators do not sum to zero.

    Args:
        arms: the arms, control first.
        metric_type: ``mean``, ``proportion`` or ``ratio``.
        cuped: whether CUPED will be applied (the covariate sums are then required).
    """
    if metric_type not in METRIC_TYPES:
        raise InvalidInput(
            f"unknown metric_type {metric_type!r}; use one of {', '.join(METRIC_TYPES)}",
            field="metric_type",
        )
    if len(arms) < 2:
        raise InvalidInput(
            f"need at least 2 arms (a control and a treatment), got {len(arms)}", field="arms"
        )
    names = [a.name for a in arms]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InvalidInput(
            f"arm names must be unique; repeated: {', '.join(duplicated)}", field="arms"
        )
    for arm in arms:
        _validate_arm(arm, metric_type, cuped)


def _validate_arm(arm: ArmStats, metric_type: str, cuped: bool) -> None:
    if arm.n < 2:
        raise InvalidInput(f"arm {arm.name!r}: n must be at least 2, got {arm.n}", field="n")
    for f in required_fields(metric_type, cuped=cuped):
        if getattr(arm, f) is None:
            raise InvalidInput(
                f"arm {arm.name!r}: field {f!r} is required for a {metric_type} metric"
                + (" with cuped" if f.startswith("pre_") else ""),
                field=f,
            )
    if metric_type == "proportion":
        _validate_proportion(arm)
    _check_variance(arm, "sum_sq", arm.sum_sq_or_sum, arm.sum)
    if metric_type == "ratio":
        if arm.den_sum == 0:
            raise InvalidInput(
                f"arm {arm.name!r}: den_sum is 0, the ratio is undefined", field="den_sum"
            )
        _check_variance(arm, "den_sum_sq", arm.den_sum_sq, arm.den_sum)
        _check_correlation(
            arm, "num_den_sum", arm.variance, arm.den_variance, arm.num_den_covariance
        )
    if cuped:
        _check_variance(arm, "pre_sum_sq", arm.pre_sum_sq, arm.pre_sum)
        _check_correlation(arm, "pre_cross_sum", arm.variance, arm.pre_variance, arm.pre_covariance)
        if metric_type == "ratio":
            _check_correlation(
                arm, "pre_den_cross_sum", arm.den_variance, arm.pre_variance, arm.pre_den_covariance
            )


def _validate_proportion(arm: ArmStats) -> None:
    if not 0 <= arm.sum <= arm.n:
        raise InvalidInput(
            f"arm {arm.name!r}: a proportion needs 0 <= sum <= n, got sum={arm.sum:g} "
            f"with n={arm.n}",
            field="sum",
        )
    if arm.sum_sq is not None and not math.isclose(
        arm.sum_sq, arm.sum, rel_tol=_REL_TOL, abs_tol=_REL_TOL
    ):
        raise InvalidInput(
            f"arm {arm.name!r}: for a proportion (0/1 values) sum_sq must equal sum, got "
            f"sum_sq={arm.sum_sq:g} and sum={arm.sum:g}",
            field="sum_sq",
        )


def _check_variance(arm: ArmStats, field: str, sum_sq: float, total: float) -> None:
    centred = sum_sq - total * total / arm.n
    if centred < -_REL_TOL * max(abs(sum_sq), total * total / arm.n, 1.0):
        raise InvalidInput(
            f"arm {arm.name!r}: {field}={sum_sq:g} is inconsistent with the sum "
            f"{total:g} and n={arm.n} (it implies a negative variance)",
            field=field,
        )


def _check_correlation(arm: ArmStats, field: str, var_a: float, var_b: float, cov: float) -> None:
    bound = math.sqrt(var_a * var_b)
    if abs(cov) > bound * (1 + 1e-6) + _REL_TOL * max(abs(cov), 1.0):
        raise InvalidInput(
            f"arm {arm.name!r}: {field} is inconsistent with the other sums (it implies a "
            f"correlation outside [-1, 1])",
            field=field,
        )


def _cov(sum_ab: float, sum_a: float, sum_b: float, n: int) -> float:
    """Sample covariance from sums; tiny negative variances from rounding become 0."""
    centred = sum_ab - sum_a * sum_b / n
    if sum_a == sum_b and centred < 0:
        centred = 0.0
    return centred / (n - 1)


def _need(arm: ArmStats, field: str) -> float:
    value = getattr(arm, field)
    if value is None:
        raise InvalidInput(f"arm {arm.name!r}: field {field!r} is missing", field=field)
    return value


def _as_count(value: object, arm: str) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"arm {arm!r}: n must be an integer, got {value!r}", field="n")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(f"arm {arm!r}: n must be an integer, got {value!r}", field="n") from None
    if not math.isfinite(number) or number != int(number):
        raise InvalidInput(f"arm {arm!r}: n must be an integer, got {value!r}", field="n")
    if number < 0:
        raise InvalidInput(f"arm {arm!r}: n must not be negative, got {int(number)}", field="n")
    return int(number)


def _as_number(value: object, arm: str, field: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | Decimal)
        and not hasattr(value, "__float__")
    ):
        raise InvalidInput(f"arm {arm!r}: {field} must be a number, got {value!r}", field=field)
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise InvalidInput(f"arm {arm!r}: {field} must be finite, got {value!r}", field=field)
    return number


def _vector(values: Sequence[float], k: int, field: str) -> tuple[float, ...]:
    if not isinstance(values, list | tuple | np.ndarray) or len(values) != k:
        raise InvalidInput(f"{field} must be a list of {k} numbers", field=field)
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float | Decimal | np.number):
            raise InvalidInput(f"{field} must hold numbers, got {v!r}", field=field)
        if not math.isfinite(float(v)):
            raise InvalidInput(f"{field} must be finite, got {v!r}", field=field)
        out.append(float(v))
    return tuple(out)
