"""This year's event window against last year's, day by day from the peak (pure).

Both windows have the same days around the peak (``start + k`` is ``k`` days into either),
so day ``k`` of this year is paired with day ``k`` of last year: the pre-sale with the
pre-sale, the peak with the peak. The ratio of the windows' totals ``R = Σ y_k / Σ x_k`` is a
ratio estimator over the ``n`` paired days; its variance (days as clusters, delta method) is
``n/(n−1) · Σ_k (y_k − R·x_k)² / (Σ x_k)²``, so what varies from day to day — and a festival
whose shape changed — widens the interval, while the festival's shape itself, present in both
years, does not. The interval is Student-t with ``n − 1`` degrees of freedom on ``ln R`` (so it
stays positive); the change in money is last year's total times ``R − 1``.

>>> c = compare_windows([100, 300, 100], [110, 330, 120], alpha=0.05)
>>> c.change_minor, round(c.ratio, 4)
(60, 1.12)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from tianping.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class WindowComparison:
    """Two aligned windows' totals (minor units), their ratio and its interval.

    Attributes:
        before_minor, after_minor: last year's and this year's totals.
        days: days in each window.
        ratio: ``after / before``.
        ratio_interval: the ``1 − alpha`` interval of the ratio.
        alpha: the interval's error rate.
    """

    before_minor: int
    after_minor: int
    days: int
    ratio: float
    ratio_interval: tuple[float, float]
    alpha: float

    @property
    def change_minor(self) -> int:
        """This year's total less last year's, in minor units."""
        return self.after_minor - self.before_minor

    @property
    def change_interval(self) -> tuple[float, float]:
        """The interval of the change (minor units): last year's total times ``R − 1``."""
        lo, hi = self.ratio_interval
        return self.before_minor * (lo - 1), self.before_minor * (hi - 1)


def compare_windows(
    before_daily: Sequence[int], after_daily: Sequence[int], *, alpha: float = 0.05
) -> WindowComparison:
    """Compare two aligned windows from their daily totals (minor units, same length).

    Raises:
        InvalidInput: windows of different lengths, under two days, or nothing last year.
    """
    x = np.asarray(before_daily, dtype=np.float64)
    y = np.asarray(after_daily, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise InvalidInput(
            f"aligned windows need the same days: {x.size} against {y.size}", field="days"
        )
    n = x.size
    if n < 2:
        raise InvalidInput("an aligned window needs at least two days", field="days")
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha must be between 0 and 1, not {alpha}", field="alpha")
    sx, sy = float(x.sum()), float(y.sum())
    if sx <= 0 or sy <= 0:
        which = "last year's" if sx <= 0 else "this year's"
        raise InvalidInput(f"{which} window has no sales to compare", field="window")
    ratio = sy / sx
    var = n / (n - 1) * float(((y - ratio * x) ** 2).sum()) / sx**2
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * math.sqrt(var) / ratio
    return WindowComparison(
        before_minor=int(round(sx)),
        after_minor=int(round(sy)),
        days=n,
        ratio=ratio,
        ratio_interval=(ratio * math.exp(-half), ratio * math.exp(half)),
        alpha=alpha,
    )
