"""Set, revise and report KPI goals. The caller commits.

Nobody changes a goal silently: the first setting is free, but every revision after it needs
an approved ``goal_change`` decision (governance calls :func:`set_goal` with its number) or is
forced by a named actor, and every setting and revision goes to the audit log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from tianping.audit import log as audit
from tianping.clock import Clock, SystemClock
from tianping.errors import Forbidden, InvalidInput, NotFound
from tianping.goals.forecast import GoalStatus, status
from tianping.goals.models import Goal, GoalRevision
from tianping.metrics.calendar import Calendar, default_calendar
from tianping.metrics.periods import check_grain, period_end, period_start
from tianping.metrics.service import METRICS, MONEY_METRICS, compute_metrics, data_window

FORECAST_PERIODS = 8
#: Metrics measured as fractions (0.05 is 5 %): a target outside 0..1 cannot be met.
FRACTIONS = frozenset({"door_delivery_rate", "refund_rate", "refund_amount_rate", "repurchase_30d"})
#: Metrics with their own scale: (lowest, highest).
SCALES = {"nps": (-100.0, 100.0), "review_score": (1.0, 5.0)}


def check_target(metric: str, target: float, deadline: date | None = None,
                 today: date | None = None) -> None:  # fmt: skip
    """Refuse a goal that cannot be met: a target outside the metric's range (counts and money
    are never negative, rates are fractions 0..1, NPS is -100..100, review scores 1..5) or a
    deadline that has already passed.

    Raises:
        InvalidInput: naming the target or deadline and the range allowed.

    >>> check_target("orders", -5)
    Traceback (most recent call last):
    ...
    tianping.errors.InvalidInput: target -5 for orders is negative; a goal's target is at least 0
    """
    low, high = SCALES.get(metric, (0.0, 1.0 if metric in FRACTIONS else math.inf))
    if not math.isfinite(target):
        raise InvalidInput(f"target {target} for {metric} is not a number", field="target")
    if target < low and low == 0:
        raise InvalidInput(
            f"target {target:g} for {metric} is negative; a goal's target is at least 0",
            field="target",
            code="out_of_range",
        )
    if not low <= target <= high:
        unit = " (a fraction: 0.05 is 5%)" if metric in FRACTIONS else ""
        raise InvalidInput(
            f"target {target:g} for {metric} is outside {low:g}..{high:g}{unit}",
            field="target",
            code="out_of_range",
        )
    if deadline is not None and today is not None and deadline < today:
        raise InvalidInput(
            f"deadline {deadline} has already passed (today is {today}); give a future date",
            field="deadline",
            code="already_past",
        )


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
    decision_id: int | None = None,
    forced_by: str | None = None,
) -> GoalRevision:
    """Create a goal or add a revision to it. Every call needs a reason.

    The baseline is the metric's value in the latest period with data when the goal is first
    set (None without a warehouse or data); revisions keep the first baseline so the path
    stays comparable.

    Args:
        decision_id: the approved ``goal_change`` decision this revision carries out.
        forced_by: who revises the goal without a decision; the reason then says so and the
            audit log records it as ``goal.forced``.

    Raises:
        InvalidInput: unknown metric or grain, a target outside the metric's range, a
            deadline already past, an empty reason or forcing actor.
        Forbidden: revising an existing goal with neither a decision nor ``forced_by``.
    """
    if metric not in METRICS:
        raise InvalidInput(
            f"unknown metric {metric!r}; metrics: {', '.join(METRICS)}", field="metric"
        )
    check_grain(grain)
    if not reason.strip():
        raise InvalidInput("a goal needs a reason for every setting and change", field="reason")
    now = (clock or SystemClock()).now()
    check_target(metric, float(target), deadline, now.date())
    goal = session.scalar(select(Goal).where(Goal.name == name))
    if forced_by is not None and not forced_by.strip():
        raise InvalidInput("forcing a goal change needs the name of who forces it", field="actor")
    if goal is not None and decision_id is None and forced_by is None:
        raise Forbidden(
            f"goal {name!r} is set (revision {len(goal.revisions)}); changing it needs an "
            f"approved goal_change decision (tianping decision propose --kind goal_change "
            f"--goal {name} ...), or --force with --actor, which is audited",
            field="name",
        )
    reason = reason.strip() + (f" (forced by {forced_by.strip()})" if forced_by else "")
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
    action = "goal.set" if revision.number == 1 else "goal.revised"
    action = "goal.forced" if forced_by else action
    audit.later(action, subject=f"goal:{name}", actor=forced_by or author or None, now=now,
                session=session, detail={"revision": revision.number, "metric": metric,
                "target": float(target), "deadline": deadline, "grain": grain,
                "reason": revision.reason, "decision": decision_id})  # fmt: skip
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
    """The goal ``name``; :class:`NotFound` when there is none."""
    goal = session.scalar(select(Goal).where(Goal.name == name))
    if goal is None:
        raise NotFound(f"no goal named {name!r}", field="name")
    return goal


def list_goals(*, session: Session) -> list[Goal]:
    """Every goal, by name."""
    return list(session.scalars(select(Goal).order_by(Goal.name)))


@dataclass(frozen=True)
class GoalReport:
    """A goal with where it stands (on track or not, forecast at the deadline) and how often it was revised."""

    goal: Goal
    status: GoalStatus
    changes: int  # revisions after the first


def goal_status(
    goal: Goal, wh, as_of: date | None = None, calendar: Calendar | None = None
) -> GoalReport:
    """Actual vs path and forecast as of ``as_of`` (default: the last day with data); the
    ``calendar``'s events (default: the built-in festivals) are known effects of the forecast."""
    rev = goal.current
    bounds = data_window(wh, None, as_of)
    day = as_of or (bounds[1] if bounds else rev.created_at.date())
    history = metric_history(wh, rev.metric, rev.grain, day)[-FORECAST_PERIODS:]
    start = rev.baseline_period or goal.created_at.date()
    events = exposures(calendar or default_calendar(), [p for p, _ in history], rev.deadline,
                       rev.grain)  # fmt: skip
    st = status(rev.baseline, rev.target, start, rev.deadline, day, history, events)
    return GoalReport(goal, st, len(goal.revisions) - 1)


def exposures(
    calendar: Calendar, periods: list[date], deadline: date, grain: str
) -> dict[str, tuple[list[float], float]]:
    """Each event's share of every history period, and of the deadline's period."""
    last = period_start(deadline, grain)
    return {
        key: (
            [calendar.exposure(key, p, period_end(p, grain)) for p in periods],
            calendar.exposure(key, last, period_end(last, grain)),
        )
        for key in calendar.keys
    }


__all__ = [
    "GoalReport",
    "get_goal",
    "goal_status",
    "list_goals",
    "metric_history",
    "set_goal",
    "MONEY_METRICS",
]
