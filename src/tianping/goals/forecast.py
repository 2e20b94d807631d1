"""Where a KPI stands against its goal (pure).

The path to target is a straight line from the baseline (the metric's value in the period the
goal was first set) to the target at the deadline. The forecast fits a least-squares line to
the metric's recent periods and extends it to the deadline. A goal is on track when the
forecast reaches the target in the goal's direction (up when the target is above the baseline).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np


@dataclass(frozen=True, slots=True)
class GoalStatus:
    """Actual against plan for one goal on one day."""

    as_of: date
    actual: float | None
    expected: float | None
    forecast: float | None
    target: float
    direction: str  # up | down
    on_track: bool | None
    progress: float | None  # share of the way from baseline to target already covered


def path_value(baseline: float, target: float, start: date, deadline: date, day: date) -> float:
    """Value on the straight line from (start, baseline) to (deadline, target) at ``day``.

    >>> path_value(100.0, 200.0, date(2024, 1, 1), date(2024, 1, 11), date(2024, 1, 6))
    150.0
    """
    span = (deadline - start).days
    if span <= 0:
        return target
    t = min(max((day - start).days / span, 0.0), 1.0)
    return baseline + t * (target - baseline)


def linear_forecast(days: list[date], values: list[float], until: date) -> float | None:
    """Least-squares line through ``(days, values)`` evaluated at ``until``; None if < 2 points.

    >>> round(linear_forecast([date(2024, 1, 1), date(2024, 1, 2)], [1.0, 2.0], date(2024, 1, 4)), 9)
    4.0
    """
    if len(values) < 2:
        return None
    x = np.array([d.toordinal() for d in days], dtype=float)
    y = np.asarray(values, dtype=float)
    slope, intercept = np.polyfit(x - x[0], y, 1)
    return float(intercept + slope * (until.toordinal() - x[0]))


def status(
    baseline: float | None,
    target: float,
    start: date,
    deadline: date,
    as_of: date,
    history: list[tuple[date, float]],
) -> GoalStatus:
    """Compare the latest actual with the path and forecast the value at the deadline."""
    direction = "up" if baseline is None or target >= baseline else "down"
    actual = history[-1][1] if history else None
    expected = (
        path_value(baseline, target, start, deadline, as_of) if baseline is not None else None
    )
    forecast = linear_forecast([d for d, _ in history], [v for _, v in history], deadline)
    on_track = None
    if forecast is not None:
        on_track = forecast >= target if direction == "up" else forecast <= target
    progress = None
    if baseline is not None and actual is not None and target != baseline:
        progress = (actual - baseline) / (target - baseline)
    return GoalStatus(as_of, actual, expected, forecast, target, direction, on_track, progress)
