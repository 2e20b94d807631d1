"""Simulated columns as Arrow tables in the documented schemas, and the ground-truth tables (pure).

Ids are fixed-width strings: ``B`` buyers, ``M`` merchants, ``P`` products, ``O`` orders,
``R`` refunds, ``V`` reviews, ``N`` NPS responses, ``C`` red packets (coupons). Event ids are
numbered across chunks, so every id is unique in the whole simulation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tianping.events.schema import TABLES
from tianping.simulate import columns as col
from tianping.simulate import identity
from tianping.simulate.aftersales import (
    ABUSE,
    CHANGE_OF_MIND,
    DECISIONS,
    NOT_RECEIVED,
    REASONS,
    TRUE_REASONS,
)
from tianping.simulate.marketplace import ChunkEvents
from tianping.simulate.population import HONESTY_NAMES, PROFESSIONAL
from tianping.simulate.world import World

EVENT_WIDTH = 10
EVENT_TABLES = ("orders", "refunds", "reviews", "nps", "activity", "exposures")
TRUTH_TABLES = (
    "sim_buyers", "sim_merchants", "sim_products", "sim_refunds", "sim_red_packets", "refund_truth"
)  # fmt: skip
#: Counters that number each event kind across chunks.
COUNTED = ("orders", "refunds", "reviews", "nps", "red_packets")

_TYPES = {
    "string": pa.string(),
    "enum": pa.string(),
    "money": pa.decimal128(col.MONEY_PRECISION, 2),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
    "int": pa.int64(),
    "bool": pa.bool_(),
}


def event_schema(name: str) -> pa.Schema:
    """Arrow schema of event table ``name`` as the warehouse stores it (money at 2 decimals)."""
    return pa.schema([pa.field(c.name, _TYPES[c.kind]) for c in TABLES[name].columns])


def width(count: int, least: int) -> int:
    """Digits needed to number ``count`` things, at least ``least``."""
    return max(least, len(str(max(count - 1, 0))))


@dataclass(slots=True)
class Numbering:
    """Id widths and the running counters of event ids across chunks."""

    buyer_width: int
    merchant_width: int
    product_width: int
    next: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))

    @classmethod
    def for_sizes(cls, buyers: int, merchants: int, products: int) -> Numbering:
        """Ids wide enough for these population sizes (buyers and products 8 digits at least, merchants 6)."""
        return cls(width(buyers, 8), width(merchants, 6), width(products, 8))

    def buyers(self, numbers: np.ndarray) -> pa.Array:
        """Buyer ids (``B`` and zero-padded numbers) as an Arrow array."""
        return col.fixed_ids("B", numbers, self.buyer_width)

    def buyer_strings(self, numbers: np.ndarray) -> np.ndarray:
        """Buyer ids as a NumPy unicode array (for assignment)."""
        return col.fixed_ids_unicode("B", numbers, self.buyer_width)

    def merchants(self, numbers: np.ndarray) -> pa.Array:
        """Merchant ids (``M`` and zero-padded numbers) as an Arrow array."""
        return col.fixed_ids("M", numbers, self.merchant_width)

    def products(self, numbers: np.ndarray) -> pa.Array:
        """Product ids (``P`` and zero-padded numbers) as an Arrow array."""
        return col.fixed_ids("P", numbers, self.product_width)

    def events(self, prefix: str, numbers: np.ndarray) -> pa.Array:
        """Event ids with ``prefix`` (orders, refunds, reviews…) as an Arrow array."""
        return col.fixed_ids(prefix, numbers, EVENT_WIDTH)


def chunk_tables(world: World, ev: ChunkEvents, ids: Numbering) -> dict[str, pa.Table]:
    """Every event and per-chunk truth table of one chunk; advances the id counters."""
    base = dict(ids.next)
    order_no = base["orders"] + np.arange(ev.orders["cell"].size)
    out = {
        "orders": _orders(world, ev, ids, order_no),
        "refunds": _refunds(world, ev, ids, order_no, base["refunds"]),
        "reviews": _reviews(world, ev, ids, order_no, base["reviews"]),
        "nps": _nps(world, ev, ids, base["nps"]),
        "activity": _activity(world, ev, ids),
        "exposures": _exposures(world, ev, ids),
        "sim_buyers": buyers_truth(world, ev, ids),
        "sim_refunds": _refunds_truth(ev, ids, order_no, base["refunds"]),
        "refund_truth": _abuse_truth(ev, ids, base["refunds"]),
        "sim_red_packets": _packets_truth(world, ev, ids, order_no, base["red_packets"]),
    }
    ids.next["orders"] += order_no.size
    ids.next["refunds"] += ev.refunds["order"].size
    ids.next["reviews"] += ev.reviews["order"].size
    ids.next["nps"] += ev.nps["buyer"].size
    ids.next["red_packets"] += ev.red_packets["buyer"].size
    return out


def _micros(world: World, seconds: np.ndarray) -> np.ndarray:
    return (world.start_second + seconds) * 1_000_000


def _table(name: str, arrays: dict[str, pa.Array]) -> pa.Table:
    return pa.Table.from_pydict(arrays, schema=event_schema(name))


def _orders(world: World, ev: ChunkEvents, ids: Numbering, order_no: np.ndarray) -> pa.Table:
    o, first = ev.orders, ev.buyers.first
    undelivered = o["lost"] | (o["delivered"] >= world.end_offset)
    return _table("orders", {
        "order_id": ids.events("O", order_no),
        "buyer_id": ids.buyers(first + o["buyer"]),
        "merchant_id": ids.merchants(o["merchant"]),
        "category": col.labels(world.params.category_names, o["category"]),
        "amount": col.money(o["amount"]),
        "created_at": col.timestamps(_micros(world, o["second"])),
        "product_id": ids.products(o["product"]),
        "coupon_amount": col.money(o["coupon"]),
        "delivered_at": col.timestamps(_micros(world, o["delivered"]), undelivered),
        "delivery_mode": col.labels(("station", "door"), o["door"].astype(np.int64)),
        "channel": col.labels(world.params.channels, o["channel"]),
        **{name: _attribute(name, o[name]) for name in identity.ATTRIBUTES},
    })  # fmt: skip


def _attribute(name: str, codes: np.ndarray) -> pa.Array:
    missing = codes < 0
    ids = col.fixed_ids(identity.PREFIXES[name], np.maximum(codes, 0), identity.SPACE_DIGITS + 1)
    return (
        pc.if_else(pa.array(~missing), ids, pa.scalar(None, pa.string())) if missing.any() else ids
    )


def _refunds(world, ev: ChunkEvents, ids: Numbering, order_no, start: int) -> pa.Table:
    r = ev.refunds
    pending = r["pending"]
    return _table("refunds", {
        "refund_id": ids.events("R", start + np.arange(r["order"].size)),
        "order_id": ids.events("O", order_no[r["order"]]),
        "requested_at": col.timestamps(_micros(world, r["requested"])),
        "reason": col.labels(REASONS, r["reason"]),
        "requested_amount": col.money(r["requested_fen"]),
        "decision": pa.array(np.asarray(DECISIONS, dtype=object)[r["decision"]], pa.string(), mask=pending),
        "refunded_amount": col.money(r["refunded_fen"], pending),
        "returned": col.booleans(r["returned"], pending),
        "decided_at": col.timestamps(_micros(world, r["decided"]), pending),
    })  # fmt: skip


def _reviews(world, ev: ChunkEvents, ids: Numbering, order_no, start: int) -> pa.Table:
    v = ev.reviews
    return _table("reviews", {
        "review_id": ids.events("V", start + np.arange(v["order"].size)),
        "order_id": ids.events("O", order_no[v["order"]]),
        "rating": pa.array(v["rating"], pa.int64()),
        "created_at": col.timestamps(_micros(world, v["created"])),
    })  # fmt: skip


def _nps(world, ev: ChunkEvents, ids: Numbering, start: int) -> pa.Table:
    n = ev.nps
    return _table("nps", {
        "response_id": ids.events("N", start + np.arange(n["buyer"].size)),
        "buyer_id": ids.buyers(ev.buyers.first + n["buyer"]),
        "score": pa.array(n["score"], pa.int64()),
        "created_at": col.timestamps(_micros(world, n["created"])),
    })  # fmt: skip


def _activity(world, ev: ChunkEvents, ids: Numbering) -> pa.Table:
    a = ev.activity
    return _table("activity", {
        "buyer_id": ids.buyers(ev.buyers.first + a["buyer"]),
        "date": col.dates(world.intensity.epoch_days[a["day"]]),
    })  # fmt: skip


def _exposures(world: World, ev: ChunkEvents, ids: Numbering) -> pa.Table:
    x = ev.exposures
    names = [p.spec.name for p in world.experiments]
    arms = [a.name for p in world.experiments for a in p.spec.arms]
    first_arm = np.cumsum([0] + [len(p.spec.arms) for p in world.experiments])
    return _table("exposures", {
        "experiment": col.labels(names, x["experiment"]),
        "variant": col.labels(arms, first_arm[x["experiment"]] + x["arm"]),
        "unit_id": ids.buyers(ev.buyers.first + x["buyer"]),
        "exposed_at": col.timestamps(_micros(world, x["second"])),
    })  # fmt: skip


def buyers_truth(world: World, ev: ChunkEvents, ids: Numbering) -> pa.Table:
    """``sim_buyers``: every buyer's hidden traits."""
    b = ev.buyers
    return pa.table({
        "buyer_id": ids.buyers(b.first + np.arange(b.size)),
        "joined_on": col.dates(world.intensity.epoch_days[0] + b.joined_day),
        "visit_rate": b.visit,
        "conversion": b.conversion,
        "price_sensitivity": b.price_sensitivity,
        "basket_extra_items": b.basket,
        "door_preference": b.door_preference,
        "change_of_mind": b.change_of_mind,
        "nps_mean": b.nps_mean,
        "rating_bias": b.rating_bias,
        "red_packet_rate": b.red_packet_rate,
        "honesty": col.labels(HONESTY_NAMES, b.honesty),
        "is_abuser": b.honesty > 0,
        "is_professional": b.honesty == PROFESSIONAL,
        "abuse_claim_rate": b.claim_rate,
        "ring_id": _ring_ids(b.ring if b.ring is not None else np.full(b.size, -1)),
        "serial_returner": b.serial if b.serial is not None else np.zeros(b.size, dtype=bool),
    })  # fmt: skip


def _refunds_truth(ev: ChunkEvents, ids: Numbering, order_no, start: int) -> pa.Table:
    r, o = ev.refunds, ev.orders
    return pa.table({
        "refund_id": ids.events("R", start + np.arange(r["order"].size)),
        "order_id": ids.events("O", order_no[r["order"]]),
        "buyer_id": ids.buyers(ev.buyers.first + o["buyer"][r["order"]]),
        "true_reason": col.labels(TRUE_REASONS, r["cause"]),
        "is_abuse": r["cause"] == TRUE_REASONS.index("abuse"),
        "honesty": col.labels(HONESTY_NAMES, r["honesty"]),
        "defective": r["defective"],
    })  # fmt: skip


def _abuse_truth(ev: ChunkEvents, ids: Numbering, start: int) -> pa.Table:
    """``refund_truth``: which requests were abuse (``abusive``, what the what-if replay reads),
    what kind (:data:`ABUSE_KINDS`, null for an honest claim) and the claimant's ring."""
    r, b = ev.refunds, ev.buyers
    buyer = ev.orders["buyer"][r["order"]]
    ring = b.ring[buyer] if b.ring is not None else np.full(buyer.size, -1)
    serial = b.serial[buyer] if b.serial is not None else np.zeros(buyer.size, dtype=bool)
    abusive = r["cause"] == ABUSE
    kind = np.select(
        [abusive & (ring >= 0), abusive & (r["reason"] == NOT_RECEIVED), abusive,
         serial & (r["cause"] == CHANGE_OF_MIND)],
        [1, 2, 3, 4], 0,
    )  # fmt: skip
    return pa.table({
        "refund_id": ids.events("R", start + np.arange(r["order"].size)),
        "abusive": abusive,
        "abuse_kind": pa.array(np.asarray((None, *ABUSE_KINDS), dtype=object)[kind], pa.string()),
        "ring_id": _ring_ids(ring),
    })  # fmt: skip


#: Kinds of abuse in ``refund_truth.abuse_kind``: a ring member's false claim, an empty-parcel
#: claim (a false "not received"), any other false claim, and a serial returner's change of
#: mind (not counted as ``abusive``: the goods come back).
ABUSE_KINDS = ("ring", "empty_parcel", "false_claim", "serial_return")


def _ring_ids(ring: np.ndarray) -> pa.Array:
    ids = col.fixed_ids("G", np.maximum(ring, 0), 9)
    inside = pa.array(np.asarray(ring) >= 0)
    return pc.if_else(inside, ids, pa.scalar(None, pa.string()))


def _packets_truth(world, ev: ChunkEvents, ids: Numbering, order_no, start: int) -> pa.Table:
    c, o = ev.red_packets, ev.orders
    used = c["order"] >= 0
    target = np.where(used, c["order"], 0)
    redeemed_at = o["second"][target] if o["second"].size else np.zeros(target.size, np.int64)
    return pa.table({
        "packet_id": ids.events("C", start + np.arange(c["buyer"].size)),
        "buyer_id": ids.buyers(ev.buyers.first + c["buyer"]),
        "value": col.money(c["value"]),
        "min_spend": col.money(c["threshold"]),
        "issued_at": col.timestamps(_micros(world, c["issued"])),
        "expires_at": col.timestamps(_micros(world, c["expires"])),
        "order_id": _order_ids_or_null(ids, order_no, target, used),
        "redeemed_at": col.timestamps(_micros(world, redeemed_at), ~used),
    })  # fmt: skip


def _order_ids_or_null(ids: Numbering, order_no, target, used: np.ndarray) -> pa.Array:
    numbers = order_no[target] if order_no.size else np.zeros(target.size, dtype=np.int64)
    return pc.if_else(pa.array(used), ids.events("O", numbers), pa.scalar(None, pa.string()))


def merchants_truth(world: World, ids: Numbering) -> pa.Table:
    """``sim_merchants``: quality and service levels of every merchant."""
    m = world.merchants
    return pa.table({
        "merchant_id": ids.merchants(np.arange(m.size)),
        "category": col.labels(world.params.category_names, m.category),
        "quality": m.quality,
        "popularity": m.popularity,
        "defect_multiplier": m.defect_multiplier,
        "delivery_days": m.delivery_days,
        "lost_rate": m.lost_rate,
    })  # fmt: skip


def products_truth(world: World, ids: Numbering) -> pa.Table:
    """``sim_products``: list price, popularity and true defect rates of every product."""
    p = world.products
    return pa.table({
        "product_id": ids.products(np.arange(p.size)),
        "merchant_id": ids.merchants(p.merchant),
        "category": col.labels(world.params.category_names, p.category),
        "price": col.money(p.price_fen),
        "popularity": p.popularity,
        "defect_rate": p.defect_rate,
        "not_as_described_rate": p.not_as_described_rate,
        "is_lemon": p.lemon,
    })  # fmt: skip
