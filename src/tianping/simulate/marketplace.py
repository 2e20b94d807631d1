"""One chunk of buyers through the simulated window: visits, exposures, orders (pure).

The model is a grid of buyer-days. A buyer visits on a day with probability
``visit_rate * day.visit`` (zero before joining); a visit converts with probability
``conversion * day.conversion * experiment effects``; a converted day has
``1 + Poisson(extra)`` orders. All of it is drawn as arrays over the chunk's buyer-day grid,
so the cost is a few vector operations per buyer-day and per order, never a Python loop over
rows. Red packets, delivery, refunds, reviews and NPS follow in
:mod:`tianping.simulate.redpackets` and :mod:`tianping.simulate.aftersales`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tianping.simulate import aftersales, identity, redpackets
from tianping.simulate.calendar import session_seconds
from tianping.simulate.population import PROFESSIONAL, Buyers, burst_cells, make_buyers
from tianping.simulate.world import World

ORDER_GAP_SECONDS = 480.0  # mean time between two orders of one session


@dataclass(frozen=True, slots=True)
class Visits:
    """The active buyer-days of a chunk, sorted by buyer then day."""

    buyer: np.ndarray
    day: np.ndarray
    second: np.ndarray
    burst: np.ndarray

    @property
    def size(self) -> int:
        """How many units (buyers) the chunk's draws are for."""
        return int(self.buyer.size)


@dataclass(slots=True)
class CellEffects:
    """Experiment multipliers on each visit, and each visit's arm in every experiment."""

    conversion: np.ndarray
    order_value: np.ndarray
    refund: np.ndarray
    nps_shift: np.ndarray
    arms: list[np.ndarray] = field(default_factory=list)
    active: list[np.ndarray] = field(default_factory=list)


@dataclass(slots=True)
class ChunkEvents:
    """Columns (NumPy) of every table for one chunk.

    Buyers, orders and packets are chunk-local numbers; times are seconds after the window start.
    """

    buyers: Buyers
    activity: dict[str, np.ndarray]
    exposures: dict[str, np.ndarray]
    orders: dict[str, np.ndarray]
    red_packets: dict[str, np.ndarray]
    refunds: dict[str, np.ndarray]
    reviews: dict[str, np.ndarray]
    nps: dict[str, np.ndarray]
    nps_effect: list[np.ndarray]


def simulate_chunk(world: World, index: int, first: int, n: int) -> ChunkEvents:
    """Simulate buyers ``first .. first + n - 1`` (chunk ``index``) over the whole window."""
    rng = np.random.default_rng([world.seed, 1, index])
    ident = identity.stream(world.seed, index)
    buyers = identity.organise(ident, world.params, index, make_buyers(rng, world.params, first, n))
    visits = draw_visits(rng, world, buyers, ident)
    exposure_days, exposures = expose(world, buyers, visits)
    effects = cell_effects(world, visits, exposure_days)
    ordered = convert(rng, world, buyers, visits, effects)
    orders = place_orders(rng, world, buyers, visits, ordered, effects)
    packets = redpackets.redeem(rng, world, buyers, orders)
    after = aftersales.simulate(rng, world, buyers, orders, effects)
    orders.update(identity.order_attributes(ident, world.params, buyers, orders))
    return ChunkEvents(
        buyers=buyers,
        activity={"buyer": visits.buyer, "day": visits.day},
        exposures=exposures,
        orders=orders,
        red_packets=packets,
        refunds=after.refunds,
        reviews=after.reviews,
        nps=after.nps,
        nps_effect=after.nps_effect,
    )


def draw_visits(
    rng: np.random.Generator, world: World, buyers: Buyers, ident: np.random.Generator | None = None
) -> Visits:
    """Which buyer-days are active: a Bernoulli draw per cell, plus abusers' burst days.

    Rings' shared bursts are drawn from ``ident`` (the identity stream) when given.
    """
    days = world.params.days
    # float32 halves the memory traffic of the grid, the cost that dominates here
    prob = np.multiply.outer(
        buyers.visit.astype(np.float32), world.intensity.visit.astype(np.float32)
    )
    np.minimum(prob, np.float32(0.98), out=prob)
    prob[np.arange(days)[None, :] < buyers.joined_day[:, None]] = 0.0
    active = rng.random(prob.shape, dtype=np.float32) < prob
    del prob
    burst = np.zeros(active.shape, dtype=bool)
    burst[burst_cells(rng, world.params, buyers)] = True
    if ident is not None:
        burst[identity.ring_burst_cells(ident, world.params, buyers)] = True
    active |= burst
    flat = np.flatnonzero(active)
    second = session_seconds(rng, world.params.hourly_profile, flat.size)
    return Visits(flat // days, flat % days, second, burst.reshape(-1)[flat])


def expose(
    world: World, buyers: Buyers, visits: Visits
) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """Assign buyers to every experiment; a unit is exposed on its first visit in the window.

    Returns each experiment's per-buyer arm (-1: not exposed) and day of exposure, and the
    exposures table's columns.
    """
    arms = world.assign(buyers.first + np.arange(buyers.size)) if world.experiments else []
    per_experiment, rows = [], []
    for e, (plan, arm) in enumerate(zip(world.experiments, arms, strict=True)):
        inside = (visits.day >= plan.start) & (visits.day < plan.end)
        cells = np.flatnonzero(inside & (arm[visits.buyer] >= 0))
        who, first_cell = np.unique(visits.buyer[cells], return_index=True)
        cell = cells[first_cell]
        day = np.full(buyers.size, -1, dtype=np.int64)
        day[who] = visits.day[cell]
        per_experiment.append(np.stack([np.where(day >= 0, arm, -1), day]))
        seconds = visits.day[cell] * 86400 + visits.second[cell]
        rows.append((np.full(who.size, e), arm[who], who, seconds))
    columns = ("experiment", "arm", "buyer", "second")
    if not rows:
        return per_experiment, {c: np.zeros(0, dtype=np.int64) for c in columns}
    return per_experiment, {c: np.concatenate([r[i] for r in rows]) for i, c in enumerate(columns)}


def cell_effects(world: World, visits: Visits, exposure: list[np.ndarray]) -> CellEffects:
    """Multiply the effects of every experiment a visit falls under (from exposure to end)."""
    ones = np.ones(visits.size)
    out = CellEffects(ones, ones.copy(), ones.copy(), np.zeros(visits.size))
    for plan, (arm_of, day_of) in zip(world.experiments, exposure, strict=True):
        exposed_day = day_of[visits.buyer]
        active = (exposed_day >= 0) & (visits.day >= exposed_day) & (visits.day < plan.end)
        arm = np.where(active, arm_of[visits.buyer], -1)
        hit = arm[active]
        out.conversion[active] *= plan.conversion[hit]
        out.order_value[active] *= plan.order_value[hit]
        out.refund[active] *= plan.refund[hit]
        out.nps_shift[active] += plan.nps_shift[hit]
        out.arms.append(arm)
        out.active.append(active)
    return out


def convert(
    rng: np.random.Generator, world: World, buyers: Buyers, visits: Visits, effects: CellEffects
) -> np.ndarray:
    """Which visits end in an order (boolean per visit).

    A repurchase effect multiplies the conversion of visits after the buyer's first order since
    exposure; that first order is found on the draws without repurchase effects, which agree
    with the final draws up to and including it.
    """
    p = world.params
    prob = buyers.conversion[visits.buyer] * world.intensity.conversion[visits.day]
    prob = np.where(visits.burst, p.professional_burst_conversion, prob * effects.conversion)
    u = rng.random(visits.size)
    base = u < np.minimum(prob, p.max_conversion)
    repeat = np.ones(visits.size)
    for plan, arm, active in zip(world.experiments, effects.arms, effects.active, strict=True):
        if not plan.has_repurchase:
            continue
        first_day = np.full(buyers.size, np.iinfo(np.int64).max)
        hits = np.flatnonzero(base & active)
        who, first = np.unique(visits.buyer[hits], return_index=True)
        first_day[who] = visits.day[hits[first]]
        after = active & (visits.day > first_day[visits.buyer])
        repeat[after] *= plan.repurchase[arm[after]]
    return u < np.minimum(prob * repeat, p.max_conversion)


def place_orders(
    rng: np.random.Generator,
    world: World,
    buyers: Buyers,
    visits: Visits,
    ordered: np.ndarray,
    effects: CellEffects,
) -> dict[str, np.ndarray]:
    """Orders of every converted visit: count, time, product, quantity, value and channel.

    Orders come out sorted by buyer and time. ``cell`` links each order to its visit.
    """
    p = world.params
    cells = np.flatnonzero(ordered)
    extra = np.where(visits.burst[cells], p.professional_burst_extra_orders,
                     p.extra_orders_per_order_day)  # fmt: skip
    count = 1 + rng.poisson(extra)
    cell = np.repeat(cells, count)
    buyer = visits.buyer[cell]
    second = _order_seconds(rng, visits, cells, count)
    product = _choose_products(rng, world, buyers.price_sensitivity[buyer])
    quantity = 1 + np.minimum(rng.poisson(buyers.basket[buyer]), 9)
    value = world.products.price_fen[product] * quantity * effects.order_value[cell]
    weights = np.asarray(p.channel_weights)
    return {
        "cell": cell,
        "buyer": buyer,
        "second": second,
        "product": product,
        "merchant": world.products.merchant[product],
        "category": world.products.category[product],
        "gross": np.maximum(np.rint(value), 1).astype(np.int64),
        "channel": rng.choice(weights.size, size=cell.size, p=weights / weights.sum()),
        "professional": buyers.honesty[buyer] == PROFESSIONAL,
    }


def _order_seconds(
    rng: np.random.Generator, visits: Visits, cells: np.ndarray, count: np.ndarray
) -> np.ndarray:
    """Seconds after the window start: the session start plus cumulative gaps, within the day."""
    gaps = 30.0 + rng.exponential(ORDER_GAP_SECONDS, size=int(count.sum()))
    total = np.cumsum(gaps)
    before = np.repeat(total[np.cumsum(count) - count] - gaps[np.cumsum(count) - count], count)
    in_day = np.minimum(np.repeat(visits.second[cells], count) + (total - before), 86399)
    return np.repeat(visits.day[cells], count) * 86400 + in_day.astype(np.int64)


def _choose_products(rng: np.random.Generator, world: World, sensitivity: np.ndarray) -> np.ndarray:
    """Two candidates by popularity; a price-sensitive buyer more often takes the cheaper."""
    cdf = world.products.cdf
    pick = np.minimum(np.searchsorted(cdf, rng.random((sensitivity.size, 2))), cdf.size - 1)
    price = world.products.price_fen[pick]
    cheaper = np.where(price[:, 0] <= price[:, 1], pick[:, 0], pick[:, 1])
    dearer = np.where(price[:, 0] <= price[:, 1], pick[:, 1], pick[:, 0])
    return np.where(rng.random(sensitivity.size) < sensitivity, cheaper, dearer)
