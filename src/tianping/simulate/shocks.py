"""Orders over two periods with planted causes, to check that the explanation finds them (pure).

Each order has six dimensions drawn independently with fixed shares (channel, city tier,
category, new or returning buyer, merchant tier, delivery mode), a day with the weekly rhythm
of :data:`tianping.simulate.params.DEFAULT_WEEKDAY_FACTORS`, and a log-normal value whose
median depends on its category. A :class:`Shock` multiplies, in the later period only, the
order value or the number of orders of one segment (``channel = live_stream ∧ city_tier =
tier3``). With no shock, both periods come from the same model: any cause found is a false one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tianping.errors import InvalidInput
from tianping.simulate.params import DEFAULT_WEEKDAY_FACTORS

#: Dimension -> (values, shares). Shares follow the simulator's channels and categories.
DIMENSIONS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "channel": (("app", "mini_program", "live_stream", "web"), (0.70, 0.14, 0.12, 0.04)),
    "city_tier": (("tier1", "tier2", "tier3", "tier4"), (0.20, 0.30, 0.30, 0.20)),
    "category": (
        ("apparel", "beauty", "electronics", "home", "food", "baby", "sports", "books"),
        (0.24, 0.12, 0.10, 0.16, 0.16, 0.08, 0.08, 0.06),
    ),
    "buyer_type": (("new", "returning"), (0.15, 0.85)),
    "merchant_tier": (("top", "mid", "long_tail"), (0.30, 0.45, 0.25)),
    "delivery_mode": (("door", "station"), (0.46, 0.54)),
}
#: Median order value (fen) of each category, as the simulator's list prices.
CATEGORY_MEDIAN_FEN = (7900, 6900, 16900, 5900, 4500, 8900, 10900, 3900)
VALUE_SIGMA = 0.7


@dataclass(frozen=True, slots=True)
class Shock:
    """A planted cause: in the later period, one segment's order value and/or order count
    are multiplied (``order_value=0.85``: 15 % cheaper orders)."""

    where: Mapping[str, str]
    order_value: float = 1.0
    orders: float = 1.0


@dataclass(frozen=True, slots=True)
class PlantedOrders:
    """Orders as columns: ``period`` (0/1), ``day``, ``codes`` (orders × dimensions),
    ``amount_minor``; ``labels`` name each dimension's codes."""

    dimensions: tuple[str, ...]
    labels: tuple[tuple[str, ...], ...]
    period: np.ndarray
    day: np.ndarray
    codes: np.ndarray
    amount_minor: np.ndarray
    days: tuple[int, int]


@dataclass(frozen=True, slots=True)
class PlantedWorld:
    """How many orders over which days, and what is planted in the later period."""

    orders_per_day: int = 20000
    days: tuple[int, int] = (28, 28)
    shocks: tuple[Shock, ...] = field(default_factory=tuple)
    first_weekday: int = 0


def planted_orders(world: PlantedWorld, seed: int) -> PlantedOrders:
    """Draw every order of both periods (vectorised; one generator seeded by ``seed``)."""
    rng = np.random.default_rng([seed, 21])
    names = tuple(DIMENSIONS)
    for shock in world.shocks:
        _check_shock(shock)
    weekday = np.asarray(DEFAULT_WEEKDAY_FACTORS) / np.mean(DEFAULT_WEEKDAY_FACTORS)
    parts = []
    for p, days in enumerate(world.days):
        rhythm = weekday[(np.arange(days) + world.first_weekday) % 7]
        counts = rng.poisson(world.orders_per_day * rhythm)
        day = np.repeat(np.arange(days), counts)
        codes = np.stack([_draw(rng, DIMENSIONS[d][1], day.size) for d in names], axis=1)
        if p == 1:
            day, codes = _shift_orders(rng, world.shocks, names, day, codes)
        value = np.asarray(CATEGORY_MEDIAN_FEN, dtype=np.float64)[codes[:, 2]]
        value = value * rng.lognormal(0.0, VALUE_SIGMA, day.size)
        if p == 1:
            for shock in world.shocks:
                value[_mask(codes, names, shock.where)] *= shock.order_value
        parts.append((np.full(day.size, p), day, codes, np.maximum(np.rint(value), 1)))
    return PlantedOrders(
        dimensions=names,
        labels=tuple(DIMENSIONS[d][0] for d in names),
        period=np.concatenate([x[0] for x in parts]),
        day=np.concatenate([x[1] for x in parts]),
        codes=np.concatenate([x[2] for x in parts]),
        amount_minor=np.concatenate([x[3] for x in parts]).astype(np.int64),
        days=world.days,
    )


def _draw(rng: np.random.Generator, shares: tuple[float, ...], n: int) -> np.ndarray:
    cdf = np.cumsum(shares) / np.sum(shares)
    return np.minimum(np.searchsorted(cdf, rng.random(n)), len(shares) - 1)


def _mask(codes: np.ndarray, names: tuple[str, ...], where: Mapping[str, str]) -> np.ndarray:
    hit = np.ones(codes.shape[0], dtype=bool)
    for dim, value in where.items():
        hit &= codes[:, names.index(dim)] == DIMENSIONS[dim][0].index(value)
    return hit


def _shift_orders(rng, shocks, names, day, codes):
    """Thin a shocked segment's orders (multiplier below 1) or copy some (above 1)."""
    keep = np.ones(day.size, dtype=bool)
    extra = [np.zeros(0, dtype=np.int64)]
    for shock in shocks:
        hit = _mask(codes, names, shock.where)
        if shock.orders < 1.0:
            keep &= ~hit | (rng.random(day.size) < shock.orders)
        elif shock.orders > 1.0:
            where = np.flatnonzero(hit)
            extra.append(where[rng.random(where.size) < shock.orders - 1.0])
    more = np.concatenate(extra)
    return (
        np.concatenate([day[keep], day[more]]),
        np.concatenate([codes[keep], codes[more]]),
    )


def _check_shock(shock: Shock) -> None:
    for dim, value in shock.where.items():
        if dim not in DIMENSIONS:
            raise InvalidInput(
                f"shock names an unknown dimension {dim!r}; use one of {', '.join(DIMENSIONS)}",
                field="where",
            )
        if value not in DIMENSIONS[dim][0]:
            raise InvalidInput(
                f"shock names an unknown {dim} {value!r}; use one of "
                f"{', '.join(DIMENSIONS[dim][0])}",
                field="where",
            )
    if shock.order_value <= 0 or shock.orders <= 0:
        raise InvalidInput("a shock's multipliers must be positive", field="shock")


def orders_table(orders: PlantedOrders, before_start: date, after_start: date) -> pa.Table:
    """The planted orders as the warehouse's ``orders`` table (money in yuan, 2 places).

    New buyers' orders each get a buyer of their own; returning buyers' orders are spread over
    a pool whose every buyer also gets one earlier order, the day before the first period, so
    that the warehouse derives the same new/returning split from the buyers' histories.
    """
    names = orders.dimensions
    returning = orders.codes[:, names.index("buyer_type")] == 1
    n = orders.period.size
    pool = max(n // 4, 1)
    rng = np.random.default_rng([n, 21])
    buyer = np.where(returning, rng.integers(0, pool, n), pool + np.arange(n))
    starts = np.where(orders.period == 1, _epoch_day(after_start), _epoch_day(before_start))
    seconds = (starts + orders.day) * 86400 + rng.integers(0, 86400, n)
    history = np.arange(pool)
    columns = {
        "buyer": np.concatenate([buyer, history]),
        "seconds": np.concatenate(
            [seconds, np.full(pool, (_epoch_day(before_start) - 1) * 86400 + 43200)]
        ),
        "amount": np.concatenate([orders.amount_minor, np.full(pool, 1000)]),
    }
    codes = np.concatenate([orders.codes, np.zeros((pool, len(names)), dtype=np.int64)])
    total = columns["buyer"].size
    label = {
        d: np.asarray(orders.labels[j], dtype=object)[codes[:, j]] for j, d in enumerate(names)
    }
    return pa.table(
        {
            "order_id": [f"O{i:010d}" for i in range(total)],
            "buyer_id": [f"B{b:09d}" for b in columns["buyer"]],
            "merchant_id": pa.array(label["merchant_tier"], pa.string()),
            "category": pa.array(label["category"], pa.string()),
            "amount": _yuan(columns["amount"]),
            "created_at": pa.array(columns["seconds"] * 1_000_000, pa.timestamp("us")),
            "channel": pa.array(label["channel"], pa.string()),
            "delivery_mode": pa.array(label["delivery_mode"], pa.string()),
            "product_id": pa.nulls(total, pa.string()),
            "coupon_amount": pa.nulls(total, pa.decimal128(18, 2)),
            "delivered_at": pa.nulls(total, pa.timestamp("us")),
        }
    )


def _yuan(minor: np.ndarray) -> pa.Array:
    cents = pc.cast(pa.array(minor, pa.int64()), pa.decimal128(19, 0))
    return pc.cast(pc.multiply(cents, pa.scalar(Decimal("0.01"))), pa.decimal128(18, 2))


def _epoch_day(day: date) -> int:
    return (day - date(1970, 1, 1)).days
