"""Abuse rings: accounts linked by a shared device, address or payment method (pure).

Two accounts are **linked** when they used the same value of an identity attribute (device
id, shipping-address hash, payment-method fingerprint) within ``window_days`` of each other:
the periods in which each used the value, widened by the window, overlap. A value used by
more than ``cap_accounts`` accounts over the whole history (a public Wi-Fi terminal, a parcel
locker, a shared office address) links nobody: it says where people are, not who runs them.
An unknown (empty) value never links. A **ring** is a connected component of the links.

Ring features of a buyer (zero outside a ring):

- ``ring_size``: accounts in the buyer's ring (1 = not linked to anyone);
- ``ring_claim_rate``: claims per order over all the ring's accounts;
- ``ring_burst_claims``: the most claims the ring's accounts made within ``burst_hours``;
- ``ring_burst_accounts``: how many distinct accounts made those claims.

A buyer is **flagged** when the ring has at least ``min_size`` accounts and at least
``min_burst_accounts`` of them claimed within ``burst_hours``: organised abuse claims together,
a household or a shared flat does not. The edges are built in the warehouse
(:mod:`tianping.aftersales.ring_features`); the components are one sparse-graph call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

ATTRIBUTES = ("device_id", "address_hash", "payment_fingerprint")
ATTRIBUTE_NAMES = {"device_id": "device", "address_hash": "address", "payment_fingerprint": "card"}
FEATURES = ("ring_size", "ring_claim_rate", "ring_burst_claims", "ring_burst_accounts")


@dataclass(frozen=True, slots=True)
class RingRules:
    """How accounts are linked into rings and when a ring is flagged."""

    window_days: float = 30.0
    cap_accounts: int = 20
    burst_hours: float = 48.0
    min_size: int = 3
    min_burst_accounts: int = 2

    def __post_init__(self) -> None:
        if self.window_days < 0 or self.burst_hours <= 0:
            raise ValueError("window_days must be >= 0 and burst_hours > 0")
        if self.cap_accounts < 2 or self.min_size < 2 or self.min_burst_accounts < 1:
            raise ValueError("cap_accounts and min_size must be >= 2, min_burst_accounts >= 1")


@dataclass(frozen=True, slots=True)
class Edges:
    """Links between accounts: ``left[i]`` and ``right[i]`` shared ``value[i]`` of ``attribute[i]``."""

    left: np.ndarray
    right: np.ndarray
    attribute: np.ndarray
    value: np.ndarray

    @classmethod
    def empty(cls) -> Edges:
        """No links."""
        e = np.zeros(0, dtype=object)
        return cls(e, e.copy(), e.copy(), e.copy())


def links_from_periods(
    attribute: np.ndarray,
    value: np.ndarray,
    buyer: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    rules: RingRules = RingRules(),
) -> Edges:
    """Links from each account's use period of each shared value (seconds since any epoch).

    The rows are ``(attribute, value, buyer)`` periods of values with 2 to ``cap_accounts``
    accounts (the warehouse and the store select them; other rows link as well, so the caller
    must apply the cap; empty or blank values are dropped here). Two accounts of the same value link when their periods, widened by
    ``window_days``, overlap — the rule :func:`tianping.aftersales.ring_features.link_expr`
    applies in SQL.

    >>> e = links_from_periods(np.array(["device_id"] * 3), np.array(["D1"] * 3),
    ...     np.array(["b1", "b2", "b3"]), np.array([0.0, 86400.0, 1e8]), np.array([0.0, 86400.0, 1e8]))
    >>> list(zip(e.left, e.right))
    [('b1', 'b2')]
    """
    attribute, value = np.asarray(attribute, dtype=object), np.asarray(value, dtype=object)
    buyer = np.asarray(buyer, dtype=object)
    first, last = np.asarray(first, np.float64), np.asarray(last, np.float64)
    known = np.array([v is not None and str(v).strip() != "" for v in value], dtype=bool)
    if not known.all():  # an unknown or blank value links nobody
        attribute, value, buyer = attribute[known], value[known], buyer[known]
        first, last = first[known], last[known]
    if buyer.size == 0:
        return Edges.empty()
    order = np.lexsort((buyer.astype(str), value.astype(str), attribute.astype(str)))
    attribute, value, buyer = attribute[order], value[order], buyer[order]
    first, last = first[order], last[order]
    same = (attribute[1:] != attribute[:-1]) | (value[1:] != value[:-1])
    starts = np.flatnonzero(np.concatenate([[True], same]))
    ends = np.append(starts[1:], buyer.size)
    window = rules.window_days * 86400.0
    out: list[tuple[int, int]] = []
    for lo, hi in zip(
        starts.tolist(), ends.tolist(), strict=True
    ):  # at most cap_accounts rows each
        for i in range(lo, hi):
            for j in range(i + 1, hi):
                if first[i] <= last[j] + window and first[j] <= last[i] + window:
                    out.append((i, j))
    if not out:
        return Edges.empty()
    i, j = np.array(out).T
    return Edges(buyer[i], buyer[j], attribute[i], value[i])


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``n`` nodes linked by integer edges ``left``–``right``.

    >>> components(5, np.array([0, 3]), np.array([1, 4])).tolist()
    [0, 0, 1, 2, 2]
    """
    graph = coo_matrix((np.ones(left.size, dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


@dataclass(frozen=True, slots=True)
class RingFeatures:
    """Ring features of every buyer (arrays aligned with ``buyer_id``) and each ring's evidence.

    ``ring`` is the buyer's ring number (-1: linked to no one); ``shared[ring]`` lists the
    ring's most widely shared values as ``(attribute, value, accounts)``.
    """

    buyer_id: np.ndarray
    ring: np.ndarray
    ring_size: np.ndarray
    ring_claim_rate: np.ndarray
    ring_burst_claims: np.ndarray
    ring_burst_accounts: np.ndarray
    rules: RingRules = field(default_factory=RingRules)
    shared: dict[int, tuple[tuple[str, str, int], ...]] = field(default_factory=dict)

    def flagged(self) -> np.ndarray:
        """Buyers in a ring big enough that enough of its accounts claimed in one burst."""
        r = self.rules
        return (self.ring_size >= r.min_size) & (self.ring_burst_accounts >= r.min_burst_accounts)

    def positions(self, ids: Any) -> np.ndarray:
        """Where each of ``ids`` stands among :attr:`buyer_id` (-1: not a buyer described here)."""
        return _lookup(_strings(self.buyer_id), _strings(ids))

    def columns(self) -> dict[str, np.ndarray]:
        """The features by name (what the scorecard and the policies read)."""
        return {name: getattr(self, name) for name in FEATURES}

    def reason(self, i: int) -> str:
        """Why buyer ``i`` is in a ring, naming the shared values (empty outside a ring).

        E.g. ``shares device D17 and card F32 with 4 other accounts; 5 of the ring's accounts claimed 9 times in 48 h``.
        """
        ring = int(self.ring[i])
        if ring < 0:
            return ""
        shared = " and ".join(f"{ATTRIBUTE_NAMES.get(a, a)} {v}" for a, v, _ in self.shared[ring])
        others = int(self.ring_size[i]) - 1
        text = f"shares {shared} with {others} other account{'s' if others != 1 else ''}"
        claims, accounts = int(self.ring_burst_claims[i]), int(self.ring_burst_accounts[i])
        if claims:
            text += (
                f"; {accounts} of the ring's accounts claimed {claims} time{'s' if claims != 1 else ''} "
                f"in {self.rules.burst_hours:g} h"
            )
        return text


def ring_features(
    buyer_id: np.ndarray,
    orders: np.ndarray,
    edges: Edges,
    claim_buyer: np.ndarray,
    claim_seconds: np.ndarray,
    rules: RingRules = RingRules(),
) -> RingFeatures:
    """Ring features of ``buyer_id`` (with their ``orders`` counts) from links and claims.

    Args:
        buyer_id: every buyer to describe (unique).
        orders: each buyer's number of orders.
        edges: links between buyers (ids not in ``buyer_id`` are ignored).
        claim_buyer, claim_seconds: every claim's buyer and time (seconds since any epoch).
        rules: the burst window and flag thresholds.
    """
    keys = _strings(buyer_id)
    buyer_id = np.asarray(buyer_id, dtype=object)
    n = buyer_id.size
    m = len(edges.left)
    ends = _lookup(keys, pa.concat_arrays([_strings(edges.left), _strings(edges.right)]))
    left, right = ends[:m], ends[m:]
    ok = (left >= 0) & (right >= 0)
    label = components(n, left[ok], right[ok])
    size = np.bincount(label, minlength=n)[label]
    ring = np.where(size > 1, label, -1)
    # only the claims of buyers in a ring count (the features are 0 outside one)
    cb = _lookup(keys, _strings(claim_buyer), among=np.flatnonzero(size > 1))
    cs = np.asarray(claim_seconds, dtype=np.float64)[cb >= 0]
    cb = cb[cb >= 0]
    claims = np.bincount(label[cb], minlength=n).astype(np.float64)
    ring_orders = np.bincount(label, weights=np.asarray(orders, np.float64), minlength=n)
    rate = np.divide(claims, ring_orders, out=np.zeros(n), where=ring_orders > 0)
    burst_claims, burst_accounts = _bursts(label, size, cb, cs, rules.burst_hours * 3600.0, n)
    inside = ring >= 0
    return RingFeatures(
        buyer_id=buyer_id,
        ring=ring,
        ring_size=size.astype(np.int64),
        ring_claim_rate=np.where(inside, rate[label], 0.0),
        ring_burst_claims=np.where(inside, burst_claims[label], 0),
        ring_burst_accounts=np.where(inside, burst_accounts[label], 0),
        rules=rules,
        shared=_shared(label[left[ok]], edges.attribute[ok], edges.value[ok], left[ok], right[ok]),
    )


def _strings(ids: Any) -> pa.Array:
    """Ids as one Arrow string array."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if not isinstance(ids, pa.Array):
        ids = pa.array(np.asarray(ids, dtype=object), type=pa.string())
    return ids.cast(pa.string())


def _lookup(keys: pa.Array, ids: pa.Array, among: np.ndarray | None = None) -> np.ndarray:
    """Position in ``keys`` of every id in ``ids`` (-1: unknown), by hash lookups.

    The hash set is built on the few ids being looked up, not on the million buyers, and the
    buyers are probed against it once. ``among``: only these positions of ``keys`` may match.
    """
    wanted = pc.unique(ids)
    candidates = keys if among is None else keys.take(pa.array(among))
    where = pc.index_in(candidates, value_set=wanted)
    found = where.is_valid().to_numpy(zero_copy_only=False)
    place = np.full(len(wanted), -1, dtype=np.int64)
    hit = np.flatnonzero(found)
    place[where.filter(where.is_valid()).to_numpy()] = hit if among is None else among[hit]
    return place[pc.index_in(ids, value_set=wanted).to_numpy(zero_copy_only=False)]


def _bursts(label, size, cb, cs, window: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per component: the most claims within ``window`` seconds, and their distinct accounts."""
    keep = size[cb] > 1
    comp, t, who = label[cb[keep]], cs[keep], cb[keep]
    claims = np.zeros(n, dtype=np.int64)
    accounts = np.zeros(n, dtype=np.int64)
    if comp.size == 0:
        return claims, accounts
    idx = np.lexsort((t, comp))
    comp, t, who = comp[idx], t[idx], who[idx]
    # claims sorted by (component, time): the window starting at each claim ends before the
    # first claim of a later component or later than ``window``
    span = t.max() - t.min() + 2 * window + 1
    key = comp * span + (t - t.min())
    in_window = np.searchsorted(key, key + window, side="right") - np.arange(key.size)
    best = np.zeros(n, dtype=np.int64)
    np.maximum.at(best, comp, in_window)
    claims[:] = best
    # the first window reaching the maximum, per component; count its distinct accounts
    is_best = in_window == best[comp]
    first = np.full(n, -1, dtype=np.int64)
    hits = np.flatnonzero(is_best)[::-1]
    first[comp[hits]] = hits
    start = t[first[comp]]
    inside = (t >= start) & (t <= start + window)
    pairs = np.unique(np.stack([comp[inside], who[inside]]), axis=1)
    accounts[:] = np.bincount(pairs[0], minlength=n)
    return claims, accounts


def _shared(comp, attribute, value, left, right, top: int = 2) -> dict[int, tuple]:
    """Each component's most widely shared values: ``(attribute, value, accounts)``.

    Ties go to the attribute, then the value, in text order.
    """
    if comp.size == 0:
        return {}
    both = pa.table(
        {
            "ring": np.concatenate([comp, comp]).astype(np.int64),
            "attribute": _strings(np.concatenate([attribute, attribute])),
            "value": _strings(np.concatenate([value, value])),
            "buyer": np.concatenate([left, right]).astype(np.int64),
        }
    )
    keys = ["ring", "attribute", "value"]
    distinct = both.group_by([*keys, "buyer"]).aggregate([])
    counted = distinct.group_by(keys).aggregate([("buyer", "count")]).sort_by(
        [("ring", "ascending"), ("buyer_count", "descending"),
         ("attribute", "ascending"), ("value", "ascending")]
    )  # fmt: skip
    ring = counted.column("ring").to_numpy()
    start = np.searchsorted(ring, ring)  # first row of each ring (sorted by ring)
    keep = np.flatnonzero(np.arange(ring.size) - start < top)
    rows = counted.take(pa.array(keep)).to_pydict()
    out: dict[int, tuple] = {}
    for r, a, v, k in zip(
        rows["ring"], rows["attribute"], rows["value"], rows["buyer_count"], strict=True
    ):
        out[r] = (*out.get(r, ()), (a, v, k))  # at most ``top`` per ring
    return out
