"""Red packets (platform coupons): issued with an expiry, redeemed on a later order (pure).

Each buyer receives ``Poisson(rate * days / 30)`` packets, more of them around festivals. A
packet the buyer means to use goes to the buyer's first order, from the issue time until it
expires, whose goods value reaches the packet's threshold and exceeds its value and that no
other packet took. Matching is vectorised: every pass looks at each pending packet's next
candidate order, the most valuable packet wins an order wanted by several, and losers move on to
the next order; after ``PASSES`` passes the rest stay unused.
"""

from __future__ import annotations

import numpy as np

from tianping.simulate.population import Buyers
from tianping.simulate.world import World

PASSES = 6


def redeem(
    rng: np.random.Generator, world: World, buyers: Buyers, orders: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Issue the chunk's red packets, redeem them on orders, and set the orders' money columns.

    Adds ``coupon`` and ``amount`` (fen) to ``orders``; returns the packets' columns with
    ``order`` = chunk-local order number, or -1 when not redeemed.
    """
    packets = issue(rng, world, buyers)
    order_of = match(packets, orders)
    coupon = np.zeros(orders["gross"].size, dtype=np.int64)
    used = order_of >= 0
    coupon[order_of[used]] = packets["value"][used]
    orders["coupon"] = coupon
    orders["amount"] = orders["gross"] - coupon
    packets["order"] = order_of
    packets.pop("will_use")
    return packets


def issue(rng: np.random.Generator, world: World, buyers: Buyers) -> dict[str, np.ndarray]:
    """Draw packets: buyer, value, threshold, issue and expiry second, and intent to use."""
    p = world.params
    count = rng.poisson(buyers.red_packet_rate * p.days / 30.0)
    buyer = np.repeat(np.arange(buyers.size), count)
    weight = world.intensity.festival / world.intensity.festival.sum()
    day = rng.choice(p.days, size=buyer.size, p=weight)
    keep = day >= buyers.joined_day[buyer]
    buyer, day = buyer[keep], day[keep]
    n = buyer.size
    issued = day * 86400 + rng.integers(0, 86400, size=n)
    by_time = np.lexsort((issued, buyer))
    buyer, issued = buyer[by_time], issued[by_time]
    value = _pick(rng, p.red_packet_values_fen, p.red_packet_value_weights, n)
    threshold = value * _pick(
        rng, p.red_packet_threshold_multiples, p.red_packet_threshold_weights, n
    )
    validity = _pick(rng, p.red_packet_validity_days, p.red_packet_validity_weights, n)
    use = p.red_packet_use_base + p.red_packet_use_per_sensitivity * buyers.price_sensitivity[buyer]
    return {
        "buyer": buyer,
        "value": value,
        "threshold": threshold,
        "issued": issued,
        "expires": issued + validity * 86400,
        "will_use": rng.random(n) < use,
    }


def _pick(rng: np.random.Generator, values: tuple, weights: tuple, n: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return np.asarray(values, dtype=np.int64)[rng.choice(w.size, size=n, p=w / w.sum())]


def match(packets: dict[str, np.ndarray], orders: dict[str, np.ndarray]) -> np.ndarray:
    """For each packet, the order it is redeemed on (chunk-local number) or -1."""
    n_orders = orders["buyer"].size
    redeemed = np.full(packets["buyer"].size, -1, dtype=np.int64)
    if n_orders == 0:
        return redeemed
    order_key = orders["buyer"].astype(np.int64) << 32 | orders["second"]
    packet_key = packets["buyer"].astype(np.int64) << 32 | packets["issued"]
    pos = np.searchsorted(order_key, packet_key)
    pending = packets["will_use"].copy()
    taken = np.zeros(n_orders, dtype=bool)
    for _ in range(PASSES):
        idx = np.flatnonzero(pending)
        if idx.size == 0:
            break
        j = np.minimum(pos[idx], n_orders - 1)
        alive = (pos[idx] < n_orders) & (orders["buyer"][j] == packets["buyer"][idx])
        alive &= orders["second"][j] < packets["expires"][idx]
        pending[idx[~alive]] = False
        idx, j = idx[alive], j[alive]
        gross = orders["gross"][j]
        fits = (gross >= packets["threshold"][idx]) & (gross > packets["value"][idx]) & ~taken[j]
        win_packet, win_order = _winners(idx[fits], j[fits], packets["value"])
        redeemed[win_packet] = win_order
        taken[win_order] = True
        pending[win_packet] = False
        pos[idx] += 1
    return redeemed


def _winners(
    packet: np.ndarray, order: np.ndarray, value: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One packet per wanted order: the most valuable, then the earliest issued."""
    ranked = np.lexsort((packet, -value[packet], order))
    packet, order = packet[ranked], order[ranked]
    first = np.ones(order.size, dtype=bool)
    first[1:] = order[1:] != order[:-1]
    return packet[first], order[first]
