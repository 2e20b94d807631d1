"""Where a KPI stands against its goal (pure).

The path to target is a straight line from the baseline (the metric's value in the period the
goal was first set) to the target at the deadline. The forecast fits a least-squares line to
the metric's recent periods and extends it to the deadline. A goal is on track when the
forecast reaches the target in the goal's direction (up when the target is above the baseline).

**Calendar effects.** A festival in the recent periods would bend that line (a November with
Double 11 in it looks like growth). Each event of the marketplace calendar that touches the
history is a known effect: a regressor equal to the share of each period's days inside the
event's window, fitted beside the line. The line is then drawn through the ordinary periods,
and the forecast adds the event's fitted effect when the deadline's period holds the event
again. An effect is fitted only where the data can carry it: the event's column is not
constant over the history and at least one degree of freedom is left after all columns
(otherwise the event is left out and the line is fitted as before). An event in the deadline's
period that the history never saw is reported as unseen, not guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    #: (event, fitted effect of a whole period inside its window) for each event fitted
    calendar_effects: tuple[tuple[str, float], ...] = ()
    #: events in the deadline's period that the history never saw (their effect is not known)
    unseen_events: tuple[str, ...] = ()


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


#: An event's exposure: the share of each history period inside its window, and the share of
#: the deadline's period.
Exposure = tuple[Sequence[float], float]


@dataclass(frozen=True, slots=True)
class Forecast:
    """The forecast value and the calendar effects it fitted."""

    value: float | None
    effects: tuple[tuple[str, float], ...] = ()
    unseen: tuple[str, ...] = ()


def linear_forecast(days: list[date], values: list[float], until: date) -> float | None:
    """Least-squares line through ``(days, values)`` evaluated at ``until``; None if < 2 points.

    >>> round(linear_forecast([date(2024, 1, 1), date(2024, 1, 2)], [1.0, 2.0], date(2024, 1, 4)), 9)
    4.0
    """
    return calendar_forecast(days, values, until, {}).value


def calendar_forecast(
    days: list[date], values: list[float], until: date, events: Mapping[str, Exposure]
) -> Forecast:
    """A least-squares line with one known effect per event (see the module's docstring).

    >>> days = [date(2024, m, 1) for m in range(4, 12)]
    >>> f = calendar_forecast(days, [10, 11, 22, 13, 14, 15, 16, 27], date(2025, 6, 1),
    ...                       {"618": ([0, 0, 1, 0, 0, 0, 0, 0], 1.0),
    ...                        "double11": ([0, 0, 0, 0, 0, 0, 0, 1], 0.0)})
    >>> round(f.value, 1), [(k, round(v, 1)) for k, v in f.effects]
    (33.9, [('618', 10.0), ('double11', 10.0)])
    """
    if len(values) < 2:
        return Forecast(None)
    x = np.array([d.toordinal() for d in days], dtype=float) - days[0].toordinal()
    y = np.asarray(values, dtype=float)
    columns = [np.ones_like(x), x]
    fitted: list[str] = []
    for name, (history, _) in events.items():
        col = np.asarray(history, dtype=float)
        trial = np.column_stack([*columns, col])
        full_rank = np.linalg.matrix_rank(trial) == trial.shape[1]
        if np.ptp(col) > 0 and full_rank and len(y) > trial.shape[1]:
            columns.append(col)
            fitted.append(name)
    coef, *_ = np.linalg.lstsq(np.column_stack(columns), y, rcond=None)
    effects = dict(zip(fitted, coef[2:].tolist(), strict=True))
    value = coef[0] + coef[1] * (until.toordinal() - days[0].toordinal())
    value += sum(effects[name] * events[name][1] for name in fitted)
    unseen = tuple(n for n, (_, at) in events.items() if at > 0 and n not in effects)
    return Forecast(float(value), tuple(effects.items()), unseen)


def status(
    baseline: float | None,
    target: float,
    start: date,
    deadline: date,
    as_of: date,
    history: list[tuple[date, float]],
    events: Mapping[str, Exposure] | None = None,
) -> GoalStatus:
    """Compare the latest actual with the path and forecast the value at the deadline
    (with the calendar's ``events`` as known effects, see the module's docstring)."""
    direction = "up" if baseline is None or target >= baseline else "down"
    actual = history[-1][1] if history else None
    expected = (
        path_value(baseline, target, start, deadline, as_of) if baseline is not None else None
    )
    fc = calendar_forecast([d for d, _ in history], [v for _, v in history], deadline, events or {})
    forecast = fc.value
    on_track = None
    if forecast is not None:
        on_track = forecast >= target if direction == "up" else forecast <= target
    progress = None
    if baseline is not None and actual is not None and target != baseline:
        progress = (actual - baseline) / (target - baseline)
    return GoalStatus(as_of, actual, expected, forecast, target, direction, on_track, progress,
                      fc.effects, fc.unseen)  # fmt: skip
