"""The change bridge: what moved GMV between two periods, part by part, closing exactly.

Reads the metric per day of both periods from the warehouse (one grouped query per table and
period), the market figures, shipped experiments and refund-policy activations from the store,
estimates each cause and hands the estimates to :func:`tianping.attribution.split.close`, which
rounds them to whole minor units and closes the bridge with the residual. Methods, sources and
limits are in ``docs/metrics.md`` ("The change bridge").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import ibis
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from tianping.attribution.split import (
    Estimate,
    Evidence,
    Part,
    close,
    days_effect,
    event_effects,
    holdout_effect,
    market_effect,
    ordinary_day,
)
from tianping.errors import UsageError
from tianping.experiments.assignment import BUCKETS, Holdout, draws, round_half_up, unit_hashes
from tianping.metrics.calendar import Calendar, default_calendar
from tianping.metrics.why import check_spans

#: The metrics a bridge splits: GMV, and GMV net of the money refunded (by request day).
METRICS = ("gmv", "net_gmv")


@dataclass(frozen=True, slots=True)
class Bridge:
    """A metric's change between two periods, in parts that sum to it exactly (minor units)."""

    metric: str
    before: tuple[date, date]
    after: tuple[date, date]
    before_minor: int
    after_minor: int
    parts: tuple[Part, ...]
    notes: tuple[str, ...]

    @property
    def change_minor(self) -> int:
        """The change, ``after - before``; the parts' sum, exactly."""
        return self.after_minor - self.before_minor


def change_bridge(
    wh: Any,
    *,
    session: Session | None,
    before: tuple[date, date],
    after: tuple[date, date],
    metric: str = "gmv",
    calendar: Calendar | None = None,
    holdout: Holdout | None = None,
) -> Bridge:
    """Split ``metric``'s change from ``before`` to ``after`` into days, market, calendar
    events, shipped experiments (against ``holdout``), refund-policy versions and residual.

    With no store (``session`` None) only the calendar is named: market figures, shipped
    experiments and refund policies live in the store.

    Raises:
        UsageError: an unknown metric, periods out of order, no orders.
    """
    _check(metric, before, after)
    daily = [_daily(wh, span, metric) for span in (before, after)]
    totals = [int(d.sum()) for d in daily]
    notes = _coverage(wh, before, after)
    calendar = calendar or default_calendar()
    events, lifts = _events(calendar, (before, after), daily, notes)
    ordinary = ordinary_day(totals[0], len(daily[0]), sum(lifts[0].values()))
    market, shipped, policy = [], [], []
    if session is None:
        notes.append("no store: market figures, shipped experiments and refund policies are "
                     "not read, so their effects stay in the residual")  # fmt: skip
    else:
        market = _market(session, ordinary, before, after, notes)
        shipped = _experiments(wh, session, before, after, metric, holdout, notes)
        policy = _policies(wh, session, before, after, metric, notes)
    estimates = [*_days(ordinary, daily), *market, *events, *shipped, *policy]
    parts = close(totals[0], totals[1], estimates)
    return Bridge(metric, before, after, totals[0], totals[1], parts, tuple(notes))


def _check(metric: str, before: tuple[date, date], after: tuple[date, date]) -> None:
    if metric not in METRICS:
        raise UsageError(
            f"cannot bridge {metric!r}; use one of {', '.join(METRICS)}", field="metric"
        )
    check_spans(before, after, names=("from", "to"))


def _coverage(wh: Any, before, after) -> list[str]:
    """A note for each period the data does not cover wholly (a partial month)."""
    from tianping.metrics.service import data_window

    window = data_window(wh, None, None)
    notes = []
    for a, b in (before, after):
        covered = 0 if window is None else (min(b, window[1]) - max(a, window[0])).days + 1
        if covered < (b - a).days + 1:
            notes.append(f"our data covers {max(covered, 0)} of the {(b - a).days + 1} days of "
                         f"{a}…{b}: the missing days are in the residual")  # fmt: skip
    return notes


def _instant(day: date) -> ibis.Value:
    return ibis.timestamp(datetime.combine(day, time.min))


def _per_day(wh: Any, table: str, when: str, value: str, span: tuple[date, date]) -> np.ndarray:
    """The sum of ``value`` per day of ``span`` (minor units), zeros for days without rows."""
    days = (span[1] - span[0]).days + 1
    out = np.zeros(days, dtype=np.int64)
    if not wh.has_table(table):
        return out
    t = wh.table(table)
    t = t.filter((t[when] >= _instant(span[0])) & (t[when] < _instant(span[1] + timedelta(1))))
    frame = wh.execute(t.group_by(day=t[when].date()).agg(total=t[value].fill_null(0).sum()))
    unit = 10**wh.scale
    for day, total in zip(frame["day"], frame["total"], strict=True):
        d = day if type(day) is date else day.date()
        out[(d - span[0]).days] = int(round(total * unit)) if total == total else 0
    return out


def _daily(wh: Any, span: tuple[date, date], metric: str) -> np.ndarray:
    if not wh.has_table("orders"):
        raise UsageError("no orders in the warehouse: load or simulate some first", field="orders")
    gmv = _per_day(wh, "orders", "created_at", "amount", span)
    if metric == "gmv":
        return gmv
    return gmv - _per_day(wh, "refunds", "requested_at", "refunded_amount", span)


def _days(ordinary: float, daily: list[np.ndarray]) -> list[Estimate]:
    n0, n1 = len(daily[0]), len(daily[1])
    if n0 == n1:
        return []
    note = "the earlier period's ordinary day times the difference in days"
    return [
        Estimate("calendar", f"{n1} days against {n0}", days_effect(ordinary, n0, n1), (), note)
    ]


def _events(calendar: Calendar, spans, daily, notes: list[str]):
    """One estimate per event in either period, and each period's lift per event."""
    lifts: list[dict[str, float]] = []
    seen: dict[str, list[Evidence]] = {}
    for span, values in zip(spans, daily, strict=True):
        found = calendar.between(*span)
        windows: dict[str, np.ndarray] = {}
        day = np.array([span[0] + timedelta(k) for k in range(len(values))])
        for o in found:
            mask = (day >= o.start) & (day <= o.end)
            windows[o.key] = windows.get(o.key, np.zeros(len(values), bool)) | mask
            seen.setdefault(o.key, []).append(Evidence("event", f"{o.key}:{o.year}", o.label))
        lift = event_effects(values, windows)
        if lift is None:
            notes.append(
                f"every day of {span[0]}…{span[1]} is an event day: no ordinary day to measure "
                "the events against, so their effect is left in the residual"
            )
            return [], [{}, {}]
        lifts.append(lift)
    names = {e.key: e.name for e in calendar.events}
    estimates = [
        Estimate("calendar", names[key], lifts[1].get(key, 0.0) - lifts[0].get(key, 0.0),
                 tuple(evidence), "event days over the period's ordinary days, later less earlier")
        for key, evidence in seen.items()
    ]  # fmt: skip
    return estimates, lifts


def _market(session, ordinary: float, before, after, notes: list[str]) -> list[Estimate]:
    from tianping.market.models import MarketFigure

    rows = session.scalars(select(MarketFigure).where(MarketFigure.metric == "gmv")).all()
    if not rows:
        notes.append("no market figures in the store (tianping market import): no market part")
        return []
    periods = {}
    for span, name in ((before, "from"), (after, "to")):
        holding = [r for r in rows if r.period_start <= span[0] and r.period_end >= span[1]]
        if not holding:
            notes.append(f"no market period holds {span[0]}…{span[1]}: no market part")
            return []
        shortest = min((r.period_end - r.period_start).days for r in holding)
        periods[name] = [r for r in holding if (r.period_end - r.period_start).days == shortest]
    labels = {k: v[0].period for k, v in periods.items()}
    if labels["from"] == labels["to"]:
        notes.append(f"both periods lie in market period {labels['from']}: its movement between "
                     "them is not known, so there is no market part")  # fmt: skip
        return []
    common = {r.platform for r in periods["from"]} & {r.platform for r in periods["to"]}
    if not common:
        notes.append("no platform has market figures in both periods: no market part")
        return []
    per_day = {
        k: sum(float(r.value) for r in v if r.platform in common)
        / ((v[0].period_end - v[0].period_start).days + 1)
        for k, v in periods.items()
    }
    ratio = per_day["to"] / per_day["from"]
    days_after = (after[1] - after[0]).days + 1
    evidence = tuple(Evidence("market", labels[k], f"market {labels[k]}: {', '.join(sorted(common))}")
                     for k in ("from", "to"))  # fmt: skip
    note = f"competitors' GMV per day ×{ratio:.4f} ({labels['from']} to {labels['to']})"
    return [
        Estimate("market", "market", market_effect(ordinary, days_after, ratio), evidence, note)
    ]


def _experiments(wh, session, before, after, metric, holdout, notes) -> list[Estimate]:
    from tianping.audit.log import AuditFilter, entries, entry_dict
    from tianping.experiments.models import Experiment

    lo = datetime.combine(before[0], time.min, UTC)
    hi = datetime.combine(after[1] + timedelta(1), time.min, UTC)
    shipped = [
        e for e in session.scalars(select(Experiment).where(Experiment.shipped_at.is_not(None)))
        if lo <= _utc(e.shipped_at) < hi
    ]  # fmt: skip
    if not shipped:
        return []
    names = ", ".join(e.name for e in shipped)
    if holdout is None:
        notes.append(f"shipped in these periods: {names}; with no global holdout given "
                     "(--holdout) their effect is not separated and stays in the residual")  # fmt: skip
        return []
    evidence = []
    for e in sorted(shipped, key=lambda e: e.name):
        evidence.append(Evidence("experiment", e.name, f"{e.name} shipped {e.shipped_variant}"))
        where = AuditFilter(action="experiment.shipped", subject=f"experiment:{e.name}")
        for entry in entries(session=session, where=where, limit=10):
            decision = (entry_dict(entry)["detail"] or {}).get("decision")
            if decision is not None:
                evidence.append(Evidence("decision", str(decision), f"decision #{decision}"))
    totals = [_buyer_totals(wh, span, metric) for span in (before, after)]
    threshold = round_half_up(BUCKETS * holdout.fraction)
    inside = [draws(holdout.salt, unit_hashes(ids)) < threshold for ids, _ in totals]
    # the holdout's realised share of the earlier period's buyers, not its nominal fraction:
    # the same buyers are in both periods, so the draw's luck cancels in the difference
    share = float(inside[0].mean()) if inside[0].size else threshold / BUCKETS
    if not 0 < share < 1:
        notes.append("no buyer of the earlier period on one side of the holdout: shipped "
                     f"experiments ({names}) are not measured")  # fmt: skip
        return []
    effects = [
        holdout_effect(values[~mask].sum(), values[mask].sum(), share)
        for (_, values), mask in zip(totals, inside, strict=True)
    ]
    note = (f"buyers outside the global holdout (salt {holdout.salt!r}, {share:.1%} of the "
            "earlier period's buyers inside) beyond the holdout's rate, later less earlier")  # fmt: skip
    label = f"shipped experiments: {names}"
    return [Estimate("experiment", label, effects[1] - effects[0], tuple(evidence), note)]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _buyer_totals(wh, span, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Each buyer's total of the metric over one period (minor units)."""
    totals: dict[str, float] = {}
    sources = [("orders", "created_at", "amount", 1)]
    if metric == "net_gmv" and wh.has_table("refunds"):
        sources.append(("refunds", "requested_at", "refunded_amount", -1))
    for table, when, value, sign in sources:
        t = wh.table(table)
        t = t.filter((t[when] >= _instant(span[0])) & (t[when] < _instant(span[1] + timedelta(1))))
        frame = wh.execute(t.group_by("buyer_id").agg(total=t[value].fill_null(0).sum()))
        for buyer, total in zip(frame["buyer_id"], frame["total"], strict=True):
            totals[buyer] = totals.get(buyer, 0.0) + sign * float(total) * 10**wh.scale
    ids = np.array(list(totals), dtype=str)
    return ids, np.fromiter(totals.values(), dtype=np.float64, count=len(totals))


def _policies(wh, session, before, after, metric, notes) -> list[Estimate]:
    from tianping.aftersales.replay import replay
    from tianping.refunds.models import PolicyActivation
    from tianping.refunds.policies import by_version

    def in_force(day: date):
        end = datetime.combine(day + timedelta(1), time.min, UTC)
        rows = session.scalars(select(PolicyActivation).order_by(PolicyActivation.activated_at,
                                                                 PolicyActivation.id)).all()  # fmt: skip
        return next((r for r in reversed(rows) if _utc(r.activated_at) < end), None)

    old, new = in_force(before[1]), in_force(after[1])
    if old is None or new is None or old.version == new.version:
        return []
    if metric == "gmv":
        notes.append(f"refund policy {new.version[:12]} replaced {old.version[:12]}: it moves "
                     "refunds, not GMV (bridge net_gmv to see it)")  # fmt: skip
        return []
    if not wh.has_table("refunds"):
        return []
    p_old, p_new = (
        by_version(old.version, session=session),
        by_version(new.version, session=session),
    )
    report = replay(wh, p_new, start=after[0], end=after[1], against=p_old)
    refunded = [sum(o.refunded_minor.values()) for o in report.outcomes]
    evidence = [Evidence("policy", p.version, f"{p.name} {p.version[:12]}") for p in (p_old, p_new)]
    for row in (old, new):
        found = re.fullmatch(r"decision #(\d+)", row.activated_by or "")
        if found:
            evidence.append(Evidence("decision", found[1], f"decision #{found[1]}"))
    note = (f"{report.requests} refund requests of {after[0]}…{after[1]} replayed under both "
            "versions: less refunded is more net GMV")  # fmt: skip
    label = f"refund policy {p_old.name} → {p_new.name}"
    return [Estimate("policy", label, -(refunded[0] - refunded[1]), tuple(evidence), note)]


def evidence_text(evidence: tuple[Evidence, ...]) -> str:
    """Evidence as people read it: ``decision #2; experiment checkout_red_packet``."""
    return "; ".join(e.label or f"{e.kind} {e.ref}" for e in evidence)


def bridge_rows(bridge: Bridge, scale: int = 2) -> list[dict[str, Any]]:
    """One dict per part (the residual last): what the CLI, the notebook and the dashboard
    show. ``amount`` is in major units, ``amount_minor`` exact."""
    return [
        {
            "kind": p.kind,
            "part": p.label,
            "amount": p.amount_minor / 10**scale,
            "amount_minor": p.amount_minor,
            "evidence": evidence_text(p.evidence),
            "evidence_items": [
                {"kind": e.kind, "ref": e.ref, "label": e.label} for e in p.evidence
            ],
            "note": p.note,
        }
        for p in bridge.parts
    ]


def bridge_summary(bridge: Bridge, scale: int = 2) -> dict[str, Any]:
    """The periods and totals of a bridge (major units, and exact minor units)."""
    unit = 10**scale
    return {
        "metric": bridge.metric,
        "from": {"start": bridge.before[0], "end": bridge.before[1],
                 "value": bridge.before_minor / unit, "value_minor": bridge.before_minor},
        "to": {"start": bridge.after[0], "end": bridge.after[1],
               "value": bridge.after_minor / unit, "value_minor": bridge.after_minor},
        "change": bridge.change_minor / unit,
        "change_minor": bridge.change_minor,
        "notes": list(bridge.notes),
    }  # fmt: skip
