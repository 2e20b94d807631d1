"""Set, revise and report KPI goals. The caller commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from tianping.clock import Clock, SystemClock
from tianping.errors import InvalidInput, NotFound
from tianping.goals.forecast import GoalStatus, status
from tianping.goals.models import Goal, GoalRevision
from tianping.metrics.periods import check_grain
from tianping.metrics.service import METRICS, MONEY_METRICS, compute_metrics, data_window

FORECAST_PERIODS = 8


def set_goal(
    name: str,
    *,
    metric: str,
    target: float,
    deadline: date,
    reason: str,
    session: Session,
    wh=None,
    grain: str = "month",
    author: str = "",
    clock: Clock | None = None,
) -> GoalRevision:
    """Create a goal or add a revision to it. Every call needs a reason.

    The baseline is the metric's value in the latest period with data when the goal is first
    set (None without a warehouse or data); revisions keep the first baseline so the path
    stays comparable.
    """
    if metric not in METRICS:
        raise InvalidInput(
            f"unknown metric {metric!r}; metrics: {', '.join(METRICS)}", field="metric"
        )
    check_grain(grain)
    if not reason.strip():
        raise InvalidInput("a goal needs a reason for every setting and change", field="reason")
    now = (clock or SystemClock()).now()
    goal = session.scalar(select(Goal).where(Goal.name == name))
    if goal is None:
        goal = Goal(name=name, created_at=now)
        session.add(goal)
        baseline, baseline_period = _baseline(wh, metric, grain)
    else:
        first = goal.revisions[0]
        baseline, baseline_period = (
            (first.baseline, first.baseline_period)
            if first.metric == metric
            else _baseline(wh, metric, grain)
        )
    revision = GoalRevision(
        number=len(goal.revisions) + 1,
        metric=metric,
        grain=grain,
        target=float(target),
        deadline=deadline,
        reason=reason.strip(),
        baseline=baseline,
        baseline_period=baseline_period,
        author=author,
        created_at=now,
    )
    goal.revisions.append(revision)
    session.flush()
    return revision


def _baseline(wh, metric: str, grain: str) -> tuple[float | None, date | None]:
    if wh is None:
        return None, None
    history = metric_history(wh, metric, grain)
    return (history[-1][1], history[-1][0]) if history else (None, None)


def metric_history(
    wh, metric: str, grain: str, end: date | None = None
) -> list[tuple[date, float]]:
    """(period start, value) of the metric for every period with a value, oldest first."""
    rows = compute_metrics(wh, grain, None, end)
    return [(r["period"], float(r[metric])) for r in rows if r.get(metric) is not None]


def get_goal(name: str, *, session: Session) -> Goal:
    goal = session.scalar(select(Goal).where(Goal.name == name))
    if goal is None:
        raise NotFound(f"no goal named {name!r}", field="name")
    return goal


def list_goals(*, session: Session) -> list[Goal]:
    return list(session.scalars(select(Goal).order_by(Goal.name)))


@dataclass(frozen=True)
class GoalReport:
    goal: Goal
    status: GoalStatus
    changes: int  # revisions after the first


def goal_status(goal: Goal, wh, as_of: date | None = None) -> GoalReport:
    """Actual vs path and forecast as of ``as_of`` (default: the last day with data)."""
    rev = goal.current
    bounds = data_window(wh, None, as_of)
    day = as_of or (bounds[1] if bounds else rev.created_at.date())
    history = metric_history(wh, rev.metric, rev.grain, day)[-FORECAST_PERIODS:]
    start = rev.baseline_period or goal.created_at.date()
    st = status(rev.baseline, rev.target, start, rev.deadline, day, history)
    return GoalReport(goal, st, len(goal.revisions) - 1)


__all__ = [
    "GoalReport",
    "get_goal",
    "goal_status",
    "list_goals",
    "metric_history",
    "set_goal",
    "MONEY_METRICS",
]
