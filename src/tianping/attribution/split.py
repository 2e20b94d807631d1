"""The change bridge's arithmetic: estimates in, integer parts that close exactly out (pure).

A metric that adds up over days (GMV, GMV net of refunds; minor units) moves from ``before``
to ``after``. Each cause is estimated on its own (:func:`days_effect`, :func:`market_effect`,
:func:`event_effects`, :func:`holdout_effect`, and the refund-policy replay of
:mod:`tianping.attribution.service`); :func:`close` rounds every estimate to a whole minor unit and
puts what they leave into the **residual**, so the parts always add up to
``after - before`` exactly, on every input. The residual is what no named cause explains:
noise, causes not on the list, and the overlap of causes measured separately.

The base of the day-count and market steps is the earlier period's **ordinary day**: its value
without the calendar's event days, ``r0 = (before - events_before) / days_before``. Then

- days: ``r0 · (days_after - days_before)`` (a 31-day month against a 30-day one);
- market: ``r0 · days_after · (m - 1)`` with ``m`` the competitors' value per day in the later
  period over the earlier one (our share held where it was);
- each event: its lift in the later period less its lift in the earlier one, a lift being the
  event days' excess over the period's ordinary days.

>>> parts = close(1_000, 1_210, [Estimate("market", "market", 100.4),
...                              Estimate("event", "618", 99.5)])
>>> [(p.label, p.amount_minor) for p in parts]
[('market', 100), ('618', 100), ('residual', 10)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tianping.errors import InvalidInput

#: The kinds of part, in the order a bridge lists them.
KINDS = ("calendar", "market", "experiment", "policy", "residual")


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where a part's number comes from: ``kind`` is ``decision``, ``experiment``,
    ``policy``, ``market`` or ``event``; ``ref`` identifies it (a decision id, an experiment
    name, a policy version, a market period, an event and year)."""

    kind: str
    ref: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class Estimate:
    """One cause's estimated effect on the change (minor units, not yet rounded)."""

    kind: str
    label: str
    amount: float
    evidence: tuple[Evidence, ...] = ()
    note: str = ""


@dataclass(frozen=True, slots=True)
class Part:
    """One line of the bridge: a whole number of minor units and its evidence."""

    kind: str
    label: str
    amount_minor: int
    evidence: tuple[Evidence, ...] = ()
    note: str = ""


def round_minor(amount: float) -> int:
    """The nearest whole minor unit, halves away from zero (the same on every platform).

    >>> round_minor(2.5), round_minor(-2.5), round_minor(-0.4)
    (3, -3, 0)
    """
    if not math.isfinite(amount):
        raise InvalidInput(f"an estimate must be a finite number, not {amount}", field="amount")
    rounded = math.floor(abs(amount) + 0.5)
    return int(rounded if amount >= 0 else -rounded)


def close(before_minor: int, after_minor: int, estimates: Sequence[Estimate]) -> tuple[Part, ...]:
    """The bridge's parts: each estimate rounded, then the residual that closes it exactly.

    ``sum(p.amount_minor for p in parts) == after_minor - before_minor`` always holds.
    """
    parts = [Part(e.kind, e.label, round_minor(e.amount), e.evidence, e.note) for e in estimates]
    named = sum(p.amount_minor for p in parts)
    residual = int(after_minor) - int(before_minor) - named
    note = "what the named causes leave: noise, other causes, and their overlap"
    return (*parts, Part("residual", "residual", residual, (), note))


def ordinary_day(total_minor: int, days: int, events_minor: float) -> float:
    """A period's value per day without its events' lift."""
    if days < 1:
        raise InvalidInput("a period has at least one day", field="days")
    return (total_minor - events_minor) / days


def days_effect(ordinary: float, days_before: int, days_after: int) -> float:
    """What a different number of days does at the earlier period's ordinary day."""
    return ordinary * (days_after - days_before)


def market_effect(ordinary: float, days_after: int, market_ratio: float) -> float:
    """What the market's movement does to us at a constant share (``market_ratio``: the
    competitors' value per day, later over earlier)."""
    if not market_ratio > 0:
        raise InvalidInput(f"the market ratio must be positive, not {market_ratio}", field="market")
    return ordinary * days_after * (market_ratio - 1)


def event_effects(
    daily_minor: Sequence[int], windows: Mapping[str, Sequence[bool]]
) -> dict[str, float] | None:
    """Each event's lift in one period: its days' excess over the period's ordinary days.

    ``windows`` maps an event to a mask over the period's days. A day in several windows is
    shared equally. None when every day is an event day (no ordinary day to compare with).

    >>> event_effects([10, 10, 40, 10], {"618": [False, False, True, False]})
    {'618': 30.0}
    """
    y = np.asarray(daily_minor, dtype=np.float64)
    if not windows:
        return {}
    masks = {k: np.asarray(m, dtype=bool) for k, m in windows.items()}
    for k, m in masks.items():
        if m.shape != y.shape:
            raise InvalidInput(f"event {k}: {m.size} days against {y.size}", field="windows")
    cover = np.sum(list(masks.values()), axis=0)
    if (cover > 0).all():
        return None
    ordinary = float(y[cover == 0].mean())
    share = np.where(cover > 0, 1.0 / np.maximum(cover, 1), 0.0)
    return {k: float(((y - ordinary) * share)[m].sum()) for k, m in masks.items()}


def holdout_effect(outside_minor: float, inside_minor: float, inside_fraction: float) -> float:
    """What the units outside the global holdout bought beyond what the holdout's rate says
    they would have: ``outside − inside · (1 − f) / f`` (``f``: the holdout's share of units).

    >>> holdout_effect(1_100, 100, 0.1)
    200.0
    """
    if not 0 < inside_fraction < 1:
        raise InvalidInput(
            f"the holdout's share must be between 0 and 1, not {inside_fraction}", field="holdout"
        )
    return outside_minor - inside_minor * (1 - inside_fraction) / inside_fraction
