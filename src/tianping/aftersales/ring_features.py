"""Ring features from the event tables: links built in the warehouse, components in NumPy.

The links (see :mod:`tianping.aftersales.rings`) are one Ibis expression over the three
identity attributes: each account's first and last use of each value, the number of accounts
per value (a window count), values used by 2 to ``cap_accounts`` accounts only, then a
self-join on the value whose use periods, widened by the window, overlap. Only the links come back, plus one row per buyer (its order count) and
one per claim. Orders tables without the attribute columns (a marketplace's own tables read
in place) have no links; empty values never link.

    from tianping.aftersales import ring_features
    rf = ring_features.buyer_rings(wh, as_of=at)     # rings.RingFeatures
    rf.flagged(), rf.reason(0)
    scores, rf = ring_features.buyer_credit_with_rings(wh, as_of=at)
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import ibis
import numpy as np
import pyarrow as pa

from tianping.aftersales import credit, rings
from tianping.aftersales.features import _as_of, _orders, buyer_features
from tianping.clock import Clock


def link_expr(wh: Any, as_of: datetime, rules: rings.RingRules) -> ibis.Table | None:
    """Every link ``(left, right, attribute, value)`` with ``left < right``; None: no attributes."""
    orders = _orders(wh, as_of)
    present = [a for a in rings.ATTRIBUTES if a in orders.columns]
    if not present:
        return None
    t = orders.created_at.epoch_seconds().cast("float64")
    used = ibis.union(
        *[
            orders.select("buyer_id", attribute=ibis.literal(a), value=orders[a], t=t)
            for a in present
        ],
        distinct=False,
    )
    used = used.filter(used.value.notnull() & (used.value.strip() != ""))
    spans = used.group_by(["attribute", "value", "buyer_id"]).aggregate(
        first=used.t.min(), last=used.t.max()
    )
    per_value = ibis.window(group_by=[spans.attribute, spans.value])
    spans = spans.mutate(accounts=spans.buyer_id.count().over(per_value))
    a = spans.filter((spans.accounts >= 2) & (spans.accounts <= rules.cap_accounts))
    b = a.select(
        attribute_b="attribute", value_b="value", right="buyer_id", first_b="first", last_b="last"
    )
    window = rules.window_days * 86400.0
    pairs = a.join(
        b,
        [
            a.attribute == b.attribute_b,
            a.value == b.value_b,
            a.buyer_id < b.right,
            a.first <= b.last_b + window,
            b.first_b <= a.last + window,
        ],
    )
    return pairs.select(
        left=pairs.buyer_id, right=pairs.right, attribute="attribute", value="value"
    )


def buyer_rings(
    wh: Any,
    *,
    as_of: datetime | None = None,
    clock: Clock | None = None,
    rules: rings.RingRules = rings.RingRules(),
) -> rings.RingFeatures:
    """Ring features of every buyer with an order up to ``as_of`` (default: now)."""
    at = _as_of(as_of, clock)
    orders = _orders(wh, at)
    # sorted: the same buyers come back in the same order on every engine and every run
    per_buyer = wh.to_arrow(
        orders.group_by("buyer_id").aggregate(orders=orders.count()).order_by("buyer_id")
    )
    expr = link_expr(wh, at, rules)
    edges = rings.Edges.empty() if expr is None else _edges(wh.to_arrow(expr))
    claim_buyer, claim_seconds = _claims_of(wh, at)
    return rings.ring_features(
        _objects(per_buyer, "buyer_id"),
        per_buyer.column("orders").to_numpy(),
        edges,
        claim_buyer,
        claim_seconds,
        rules,
    )


def _claims_of(wh: Any, at: datetime) -> tuple[np.ndarray, np.ndarray]:
    """Buyer and time (epoch seconds) of every claim (a few per hundred orders)."""
    if not wh.has_table("refunds"):
        return np.zeros(0, dtype=object), np.zeros(0)
    r = wh.table("refunds")
    r = r.filter(r.requested_at <= at)
    j = r.join(_orders(wh, at).select("order_id", "buyer_id"), "order_id")
    table = wh.to_arrow(j.select("buyer_id", t=j.requested_at.epoch_seconds().cast("float64")))
    return _objects(table, "buyer_id"), table.column("t").to_numpy(zero_copy_only=False)


def _edges(table: pa.Table) -> rings.Edges:
    return rings.Edges(*(_objects(table, c) for c in ("left", "right", "attribute", "value")))


def _objects(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=object)


def buyer_credit_with_rings(
    wh: Any,
    *,
    as_of: datetime | None = None,
    clock: Clock | None = None,
    rules: rings.RingRules = rings.RingRules(),
    card: credit.ExpertScorecard = credit.RING_SCORECARD,
) -> tuple[credit.CreditScores, rings.RingFeatures]:
    """Credit scores of every buyer with their ring features scored, and the ring features.

    Both come in the same buyer order; ``ring.reason(i)`` says what links buyer ``i``.
    """
    at = _as_of(as_of, clock)
    history = buyer_features(wh, as_of=at)
    ring = buyer_rings(wh, as_of=at, rules=rules)
    pos = _positions(ring.buyer_id, history.buyer_id)
    ring = _take(ring, pos)
    scored = dataclasses.replace(history, rings=ring.columns())
    return credit.score_buyers(scored, card), ring


def _positions(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Index in ``ids`` of every id in ``wanted`` (the same set of buyers, another order)."""
    order = np.argsort(ids.astype(str))
    pos = order[np.searchsorted(ids[order].astype(str), wanted.astype(str))]
    if not np.array_equal(ids[pos].astype(str), wanted.astype(str)):
        raise AssertionError("ring features and credit history describe different buyers")
    return pos


def _take(f: rings.RingFeatures, pos: np.ndarray) -> rings.RingFeatures:
    return dataclasses.replace(
        f, buyer_id=f.buyer_id[pos], ring=f.ring[pos],
        **{name: getattr(f, name)[pos] for name in rings.FEATURES},
    )  # fmt: skip
