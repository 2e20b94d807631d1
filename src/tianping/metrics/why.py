"""Why did GMV move, segment by segment: the cube from one grouped pass, then the pure search.

:func:`segment_cube` runs one grouped query over the orders of both periods (by day and every
dimension); only that cube leaves the warehouse. :func:`explain_segments` hands it to
:func:`tianping.metrics.segments.explain_cube`, which reads every combination of up to three
dimensions from it in memory. Definitions are in ``docs/metrics.md`` ("Which segments").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import ibis
import numpy as np

from tianping.errors import UsageError
from tianping.metrics.aligned import WindowComparison, compare_windows
from tianping.metrics.calendar import Calendar, Occurrence
from tianping.metrics.segments import Cube, Explanation, daily_totals, explain_cube
from tianping.warehouse.backend import Warehouse

#: Dimensions searched by default: columns of orders, and ``buyer_type`` (new or returning:
#: whether the order is the buyer's first in all loaded history).
DIMENSIONS = ("category", "channel", "delivery_mode", "buyer_type")
#: Every dimension that may be named: low-cardinality columns of orders and ``buyer_type``.
ALLOWED = ("category", "channel", "delivery_mode", "buyer_type")
NONE_LABEL = "(none)"


def segment_cube(
    wh: Warehouse,
    before: tuple[date, date],
    after: tuple[date, date],
    dimensions: tuple[str, ...] = DIMENSIONS,
) -> Cube:
    """GMV (minor units) and orders per period, day and dimension values: one grouped query."""
    check_spans(before, after)
    _check_dimensions(dimensions)
    if not wh.has_table("orders"):
        raise UsageError("no orders in the warehouse: load or simulate some first", field="orders")
    orders = wh.table("orders")
    if "buyer_type" in dimensions:
        first_at = orders.created_at.min().over(group_by=orders.buyer_id)
        orders = orders.mutate(
            buyer_type=ibis.ifelse(orders.created_at == first_at, "new", "returning")
        )
    lo, hi = _instant(before[0]), _instant(after[1] + timedelta(days=1))
    t = orders.filter((orders.created_at >= lo) & (orders.created_at < hi))
    in_before = t.created_at < _instant(before[1] + timedelta(days=1))
    in_after = t.created_at >= _instant(after[0])
    t = t.filter(in_before | in_after)
    keys = {
        "period": ibis.ifelse(t.created_at >= _instant(after[0]), 1, 0),
        "day": t.created_at.date(),
        **{d: t[d].cast("string").fill_null(NONE_LABEL) for d in dimensions},
    }
    frame = wh.execute(t.group_by(**keys).agg(orders=t.count(), gmv=t.amount.sum()))
    return _cube_of_frame(frame, before, after, dimensions, wh.scale)


def explain_segments(
    wh: Warehouse,
    before: tuple[date, date],
    after: tuple[date, date],
    dimensions: tuple[str, ...] = DIMENSIONS,
    *,
    depth: int = 3,
    alpha: float = 0.05,
    top: int = 10,
) -> Explanation:
    """The segments (up to ``depth`` dimensions) that moved GMV between the two spans."""
    cube = segment_cube(wh, before, after, dimensions)
    return explain_cube(cube, depth=min(depth, len(dimensions)), alpha=alpha, top=top)


@dataclass(frozen=True, slots=True)
class EventExplanation:
    """This year's event window against last year's: the whole, then the segments."""

    before: Occurrence
    after: Occurrence
    comparison: WindowComparison
    explanation: Explanation


def explain_event(
    wh: Warehouse,
    calendar: Calendar,
    event: str,
    year: int,
    dimensions: tuple[str, ...] = DIMENSIONS,
    *,
    depth: int = 3,
    alpha: float = 0.05,
    top: int = 10,
) -> EventExplanation:
    """Event ``event`` in ``year`` against the same event a year before, day by day from the
    peak: the GMV ratio with its interval, and the segments that moved it (one grouped pass)."""
    last, this = calendar.aligned(event, year)
    cube = segment_cube(wh, (last.start, last.end), (this.start, this.end), dimensions)
    _, gmv = daily_totals(cube)
    for o, daily in ((last, gmv[0]), (this, gmv[1])):
        _require_sales(o, float(daily.sum()))
    comparison = compare_windows(gmv[0, : last.days], gmv[1, : this.days], alpha=alpha)
    found = explain_cube(cube, depth=min(depth, len(dimensions)), alpha=alpha, top=top)
    return EventExplanation(last, this, comparison, found)


def compare_event(
    wh: Warehouse, calendar: Calendar, event: str, year: int, *, alpha: float = 0.05
) -> tuple[Occurrence, Occurrence, WindowComparison]:
    """Event ``event`` in ``year`` against the year before: GMV per aligned day, one query."""
    last, this = calendar.aligned(event, year)
    if not wh.has_table("orders"):
        raise UsageError("no orders in the warehouse: load or simulate some first", field="orders")
    t = wh.table("orders")
    inside = [
        (t.created_at >= _instant(o.start)) & (t.created_at < _instant(o.end + timedelta(days=1)))
        for o in (last, this)
    ]
    t = t.filter(inside[0] | inside[1])
    frame = wh.execute(t.group_by(day=t.created_at.date()).agg(gmv=t.amount.sum()))
    before, after = np.zeros(last.days, np.int64), np.zeros(this.days, np.int64)
    unit = 10**wh.scale
    for day, gmv in zip(frame["day"], frame["gmv"], strict=True):
        d = day if type(day) is date else day.date()
        values, o = (before, last) if d <= last.end else (after, this)
        values[(d - o.start).days] = int(round(gmv * unit)) if gmv == gmv else 0
    for o, values in ((last, before), (this, after)):
        _require_sales(o, float(values.sum()))
    return last, this, compare_windows(before, after, alpha=alpha)


def _require_sales(o: Occurrence, total: float) -> None:
    if total <= 0:
        raise UsageError(
            f"no orders in {o.label}: the aligned comparison needs both years' windows in the "
            "warehouse",
            field="event",
        )


def _instant(day: date) -> ibis.Value:
    return ibis.timestamp(datetime.combine(day, time.min))


def check_spans(
    before: tuple[date, date],
    after: tuple[date, date],
    *,
    names: tuple[str, str] = ("before", "after"),
) -> None:
    """Raise a :class:`UsageError` unless both periods run forward and the later one starts
    after the earlier one ends; ``names`` are the fields the errors name."""
    for name, (a, b) in zip(names, (before, after), strict=True):
        if a > b:
            raise UsageError(f"the {name} period starts {a}, after its end {b}", field=name)
    if after[0] <= before[1]:
        raise UsageError(
            f"the periods overlap: the later one starts {after[0]}, before the earlier one "
            f"ends {before[1]}",
            field=names[1],
        )


def _check_dimensions(dimensions: tuple[str, ...]) -> None:
    if not dimensions:
        raise UsageError("name at least one dimension", field="dimensions")
    for d in dimensions:
        if d not in ALLOWED:
            raise UsageError(
                f"cannot search dimension {d!r}; use any of {', '.join(ALLOWED)}",
                field="dimensions",
            )
    if len(set(dimensions)) != len(dimensions):
        raise UsageError("a dimension is named twice", field="dimensions")


def _cube_of_frame(frame, before, after, dimensions, scale: int) -> Cube:
    days = ((before[1] - before[0]).days + 1, (after[1] - after[0]).days + 1)
    period = frame["period"].to_numpy(dtype=np.int64)
    day_of = frame["day"].map(lambda v: v if isinstance(v, date) else v.date())
    starts = np.where(period == 1, after[0].toordinal(), before[0].toordinal())
    day = np.array([d.toordinal() for d in day_of], dtype=np.int64) - starts
    labels, codes = [], []
    for d in dimensions:
        values = frame[d].astype(str).to_numpy()
        names, code = np.unique(values, return_inverse=True)
        labels.append(tuple(str(n) for n in names))
        codes.append(code.reshape(-1))
    gmv = frame["gmv"].map(lambda v: int(round(v * 10**scale)) if v == v else 0)
    return Cube(
        dimensions=tuple(dimensions),
        labels=tuple(labels),
        codes=np.stack(codes, axis=1) if codes else np.zeros((len(frame), 0), dtype=np.int64),
        period=period,
        day=day,
        orders=frame["orders"].to_numpy(dtype=np.int64),
        gmv_minor=gmv.to_numpy(dtype=np.int64),
        days=days,
    )


def cause_rows(explanation: Explanation, scale: int = 2) -> list[dict]:
    """One dict per cause, money in major units rounded to ``scale`` places: what the CLI and
    the notebook show."""
    unit = 10**scale

    def money(minor: float) -> float:
        return round(minor / unit, scale)

    rows = []
    for rank, c in enumerate(explanation.causes, start=1):
        rows.append(
            {
                "rank": rank,
                "segment": c.label,
                "dimensions": len(c.segment),
                "gmv_before": money(c.gmv_before),
                "gmv_after": money(c.gmv_after),
                "change": money(c.change),
                "volume": money(c.volume),
                "mix": money(c.mix),
                "rate": money(c.rate),
                "own": money(c.own),
                "own_low": money(c.interval[0]),
                "own_high": money(c.interval[1]),
                "explanatory_power": None
                if c.explanatory_power is None
                else round(c.explanatory_power, 4),
                "share_before": round(c.share_before, 4),
                "share_after": round(c.share_after, 4),
                "aov_before": money(c.aov_before),
                "aov_after": money(c.aov_after),
            }
        )
    return rows
