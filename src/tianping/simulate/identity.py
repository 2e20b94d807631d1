"""Who an order came from beyond the account: device, shipping address, payment method (pure).

Every order carries a device id, a shipping-address hash and a payment-method fingerprint.
An honest buyer uses their own device, card and home address; some share a household
(address, sometimes a card) with one other account; orders delivered to a station go to one
of a few hundred parcel lockers; a few orders come from public devices (shop or campus
Wi-Fi terminals). A locker or public device is shared by very many accounts.

Abuse rings (``ring_share`` > 0) are groups of accounts run by one operator: they order from
the ring's devices, ship to its drop addresses and pay with its cards, and they order and
claim together in bursts. Serial returners (``serial_returner_share`` > 0) are honest
accounts that change their mind on many orders.

All draws here come from their own random stream, so with rings and serial returners off
(the default) every other column is what it was before orders carried these attributes.
With them on, the chunk's other draws shift too (ring members order in bursts).

Attribute values are integers ``space * 10**SPACE_DIGITS + number`` (spaces: own, public,
ring, household); -1 means unknown (the value is missing from the order).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tianping.simulate.params import MarketParams
from tianping.simulate.population import PROFESSIONAL, Buyers

ATTRIBUTES = ("device_id", "address_hash", "payment_fingerprint")
PREFIXES = {"device_id": "D", "address_hash": "A", "payment_fingerprint": "F"}
SPACE_DIGITS = 11
OWN, PUBLIC, RING, HOUSEHOLD = 1, 2, 3, 4
RING_NUMBERS = 100_000  # rings per chunk at most: global ring = chunk * RING_NUMBERS + local
RING_SLOTS = 4  # devices, addresses or cards a ring owns


def stream(seed: int, index: int) -> np.random.Generator:
    """The random stream of chunk ``index``'s identity draws (separate from its events)."""
    return np.random.default_rng([seed, 2, index])


def organise(rng: np.random.Generator, params: MarketParams, index: int, b: Buyers) -> Buyers:
    """``b`` with ring membership and serial returners drawn (unchanged when both shares are 0).

    Ring members become professional abusers with the ring's claim rate; serial returners
    change their mind ``serial_returner_multiplier`` times as often.
    """
    ring = np.full(b.size, -1, dtype=np.int64)
    serial = np.zeros(b.size, dtype=bool)
    honesty, claim, com = b.honesty.copy(), b.claim_rate.copy(), b.change_of_mind.copy()
    if params.ring_share > 0:
        lo, hi = params.ring_size
        n_rings = int(round(b.size * params.ring_share / ((lo + hi) / 2)))
        sizes = rng.integers(lo, hi + 1, size=n_rings)
        sizes = sizes[np.cumsum(sizes) <= b.size]
        members = rng.choice(b.size, size=int(sizes.sum()), replace=False)
        ring[members] = index * RING_NUMBERS + np.repeat(np.arange(sizes.size), sizes)
        honesty[members] = PROFESSIONAL
        claim[members] = params.ring_claim_rate
    if params.serial_returner_share > 0:
        serial = (rng.random(b.size) < params.serial_returner_share) & (ring < 0)
        com[serial] *= params.serial_returner_multiplier
    return dataclasses.replace(
        b, ring=ring, serial=serial, honesty=honesty, claim_rate=claim, change_of_mind=com
    )


def ring_burst_cells(
    rng: np.random.Generator, params: MarketParams, b: Buyers
) -> tuple[np.ndarray, np.ndarray]:
    """(buyer, day) of every day a ring member spends in one of the ring's shared bursts."""
    if b.ring is None or not (b.ring >= 0).any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rings, member_ring = np.unique(b.ring[b.ring >= 0], return_inverse=True)
    members = np.flatnonzero(b.ring >= 0)
    lo, hi = params.ring_bursts
    n_bursts = rng.integers(lo, hi + 1, size=rings.size)
    burst_ring = np.repeat(np.arange(rings.size), n_bursts)
    start = rng.integers(0, max(params.days - 1, 1), size=burst_ring.size)
    dlo, dhi = params.ring_burst_days
    length = rng.integers(dlo, dhi + 1, size=burst_ring.size)
    # every (member, burst of its ring) pair; a member skips a burst now and then
    order = np.argsort(member_ring, kind="stable")
    per_ring = np.bincount(member_ring, minlength=rings.size)
    first_member = np.cumsum(per_ring) - per_ring
    pair_burst = np.repeat(np.arange(burst_ring.size), per_ring[burst_ring])
    within = np.arange(pair_burst.size) - np.repeat(
        np.cumsum(per_ring[burst_ring]) - per_ring[burst_ring], per_ring[burst_ring]
    )
    pair_member = members[order[first_member[burst_ring[pair_burst]] + within]]
    joins = rng.random(pair_burst.size) < params.ring_join_burst
    pair_burst, pair_member = pair_burst[joins], pair_member[joins]
    cells = length[pair_burst]
    cell_buyer = np.repeat(pair_member, cells)
    offset = np.arange(cell_buyer.size) - np.repeat(np.cumsum(cells) - cells, cells)
    cell_day = np.repeat(start[pair_burst], cells) + offset
    keep = cell_day < params.days
    return cell_buyer[keep], cell_day[keep]


def order_attributes(
    rng: np.random.Generator, params: MarketParams, b: Buyers, orders: dict
) -> dict[str, np.ndarray]:
    """Device, address and payment codes of every order (-1 = missing); see the module doc."""
    buyer = orders["buyer"]
    n, glob = buyer.size, b.first + buyer
    ring = b.ring[buyer] if b.ring is not None else np.full(n, -1, dtype=np.int64)
    partner = _households(rng, params, b)
    household = b.first + np.minimum(buyer, partner[buyer])  # the pair's lower number
    home = np.where(partner[buyer] >= 0, _code(HOUSEHOLD, household), _code(OWN, glob))
    locker = _code(PUBLIC, _hash(glob) % max(params.parcel_lockers, 1))
    address = np.where(orders["door"], home, locker)
    card_shared = partner[buyer] >= 0
    card_shared &= _hash(household) % 1000 < params.household_shared_payment * 1000
    payment = np.where(card_shared, _code(HOUSEHOLD, household), _code(OWN, glob))
    public = rng.random(n) < params.public_device_share
    device = np.where(public, _code(PUBLIC, rng.integers(0, max(params.public_devices, 1), n)),
                      _code(OWN, glob))  # fmt: skip
    out = {"device_id": device, "address_hash": address, "payment_fingerprint": payment}
    in_ring = ring >= 0
    shares = (params.ring_shared_device, params.ring_shared_address, params.ring_shared_payment)
    for name, share in zip(ATTRIBUTES, shares, strict=True):
        use = in_ring & (rng.random(n) < share)
        slot = rng.integers(0, RING_SLOTS, n)
        out[name] = np.where(use, _code(RING, ring * RING_SLOTS + slot), out[name])
        out[name] = np.where(rng.random(n) < params.attribute_missing_share, -1, out[name])
    return out


def _households(rng: np.random.Generator, params: MarketParams, b: Buyers) -> np.ndarray:
    """Each buyer's household partner (chunk-local number), -1 for buyers living alone.

    Consecutive pairs (2k, 2k+1) form a household with probability ``household_share``.
    """
    partner = np.full(b.size, -1, dtype=np.int64)
    pairs = np.flatnonzero(rng.random(b.size // 2) < params.household_share) * 2
    partner[pairs], partner[pairs + 1] = pairs + 1, pairs
    return partner


def _code(space: int, number: np.ndarray | int) -> np.ndarray:
    return space * 10**SPACE_DIGITS + np.asarray(number, dtype=np.int64)


def _hash(x: np.ndarray) -> np.ndarray:
    """A cheap deterministic mix of integers (splitmix64's finaliser), non-negative."""
    z = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return ((z ^ (z >> np.uint64(31))) >> np.uint64(1)).astype(np.int64)
