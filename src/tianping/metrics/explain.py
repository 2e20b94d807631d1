"""Why did GMV move? Decomposition into buyers × orders per buyer × AOV (pure).

GMV = B · F · A with B buyers, F = orders / buyers and A = GMV / orders. Between two periods
the change splits into one contribution per factor with the logarithmic mean Divisia index
(LMDI-I): ``C_x = L(G1, G0) · ln(x1 / x0)`` where ``L(a, b) = (a − b) / (ln a − ln b)``. The
three contributions sum exactly to ``G1 − G0`` (ln G = ln B + ln F + ln A) and do not depend
on the order of the factors, like a Shapley split but closed-form. When a factor is zero in one
period the logarithm is undefined; then the exact Shapley value over the three factors is used
instead (the average of the factor's marginal effect over all six orderings), which also sums
to the total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import permutations

FACTORS = ("buyers", "orders_per_buyer", "aov")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """GMV (major units, float for the decomposition), orders and buyers of one period."""

    gmv: float
    orders: int
    buyers: int

    @property
    def factors(self) -> dict[str, float]:
        """GMV's factors: buyers × orders per buyer × average order value (their product is the GMV)."""
        opb = self.orders / self.buyers if self.buyers else 0.0
        aov = self.gmv / self.orders if self.orders else 0.0
        return {"buyers": float(self.buyers), "orders_per_buyer": opb, "aov": aov}


@dataclass(frozen=True, slots=True)
class Decomposition:
    """Contributions (same unit as GMV) that sum to ``change``."""

    before: Snapshot
    after: Snapshot
    change: float
    contributions: dict[str, float]
    method: str


def _log_mean(a: float, b: float) -> float:
    if a == b:
        return a
    return (a - b) / (math.log(a) - math.log(b))


def decompose(before: Snapshot, after: Snapshot) -> Decomposition:
    """Split ``after.gmv - before.gmv`` into buyers, orders-per-buyer and AOV contributions.

    >>> d = decompose(Snapshot(100.0, 10, 5), Snapshot(240.0, 20, 8))
    >>> round(sum(d.contributions.values()), 9) == round(d.change, 9)
    True
    """
    f0, f1 = before.factors, after.factors
    change = after.gmv - before.gmv
    if all(v > 0 for v in (*f0.values(), *f1.values())):
        weight = _log_mean(after.gmv, before.gmv)
        contrib = {k: weight * math.log(f1[k] / f0[k]) for k in FACTORS}
        return Decomposition(before, after, change, contrib, "lmdi")
    return Decomposition(before, after, change, _shapley(f0, f1), "shapley")


def _shapley(f0: dict[str, float], f1: dict[str, float]) -> dict[str, float]:
    def product(switched: set[str]) -> float:
        return math.prod(f1[k] if k in switched else f0[k] for k in FACTORS)

    totals = dict.fromkeys(FACTORS, 0.0)
    orders = list(permutations(FACTORS))
    for order in orders:
        switched: set[str] = set()
        for k in order:
            before = product(switched)
            switched.add(k)
            totals[k] += product(switched) - before
    return {k: v / len(orders) for k, v in totals.items()}


@dataclass(frozen=True, slots=True)
class Mover:
    """One dimension value's GMV change and its share of the total change."""

    value: str
    gmv_before: float
    gmv_after: float
    change: float
    share_of_change: float | None


def rank_movers(before: dict[str, float], after: dict[str, float], top: int = 10) -> list[Mover]:
    """Dimension values (e.g. categories) ranked by the absolute size of their GMV change.

    >>> [m.value for m in rank_movers({"a": 10, "b": 5}, {"a": 11, "b": 1})]
    ['b', 'a']
    """
    total = sum(after.values()) - sum(before.values())
    movers = []
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key, 0.0), after.get(key, 0.0)
        share = (a - b) / total if total else None
        movers.append(Mover(key, b, a, a - b, share))
    movers.sort(key=lambda m: (-abs(m.change), m.value))
    return movers[:top]
