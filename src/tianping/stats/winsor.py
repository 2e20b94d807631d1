"""Winsorisation: cap extreme unit-level values so a few whales do not drown the signal.

How it fits the warehouse. Winsorising is a per-unit operation, so it happens before the
sums: the engine computes the cap once per metric over all arms pooled (e.g. the 99th
percentile of the unit values, ``approx_quantile`` in DuckDB or ``percentile_approx`` in
Spark), then aggregates ``least(greatest(y, lower), upper)`` into ``sum`` and ``sum_sq``.
The same caps must apply to every arm (caps per arm would bias the effect). In Python,
:func:`winsor_bounds` computes the caps and :func:`clip` applies them, so the pure path
and the warehouse path agree whenever the quantiles agree.
"""

from __future__ import annotations

import numpy as np

from tianping.errors import InvalidInput


def winsor_bounds(
    values, upper: float = 0.99, lower: float | None = None
) -> tuple[float | None, float | None]:
    """The caps at the given quantiles of ``values`` (linear interpolation).

    Args:
        values: unit-level values (all arms pooled).
        upper: quantile of the upper cap in (0, 1]; None for no upper cap.
        lower: quantile of the lower cap in [0, 1); None (default) for no lower cap.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise InvalidInput("winsorisation needs at least one value", field="values")
    for name, q in (("upper", upper), ("lower", lower)):
        if q is not None and not 0 <= q <= 1:
            raise InvalidInput(f"{name} must be a quantile in [0, 1], got {q!r}", field=name)
    if upper is not None and lower is not None and lower > upper:
        raise InvalidInput("lower quantile is above the upper one", field="lower")
    lo = None if lower is None else float(np.quantile(x, lower))
    hi = None if upper is None else float(np.quantile(x, upper))
    return lo, hi


def clip(values, lower: float | None = None, upper: float | None = None) -> np.ndarray:
    """``values`` with everything below ``lower`` raised to it and above ``upper`` cut to it."""
    return np.clip(np.asarray(values, dtype=float), lower, upper)


def winsorize(values, upper: float = 0.99, lower: float | None = None) -> np.ndarray:
    """Cap ``values`` at their own quantiles (see :func:`winsor_bounds`).

    >>> winsorize([1.0, 2.0, 3.0, 100.0], upper=0.75).tolist()
    [1.0, 2.0, 3.0, 27.25]
    """
    lo, hi = winsor_bounds(values, upper, lower)
    return clip(values, lo, hi)
