"""Ring features from the event tables: links built in the warehouse, components in NumPy.

The links (see :mod:`tianping.aftersales.rings`) are one Ibis expression per identity
attribute: each account's first and last use of a value, values used by 2 to ``cap_accounts``
accounts only, then a self-join on the value whose use periods, widened by the window,
overlap. Only the links come back (a value used by one account, the vast majority, never
leaves the engine), plus one row per buyer and one per claim of a linked buyer. Orders tables
without the attribute columns (data from before they existed) have no links.

    from tianping.aftersales import ring_features
    rf = ring_features.buyer_rings(wh, as_of=at)     # rings.RingFeatures
    rf.flagged(), rf.reason(0)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ibis
import numpy as np
import pyarrow as pa

from tianping.aftersales import rings
from tianping.aftersales.features import _as_of, _orders
from tianping.clock import Clock


def link_expr(wh: Any, as_of: datetime, rules: rings.RingRules) -> ibis.Table | None:
    """Every link ``(left, right, attribute, value)`` with ``left < right``; None: no attributes."""
    orders = _orders(wh, as_of)
    window = rules.window_days * 86400.0
    parts = []
    for attribute in rings.ATTRIBUTES:
        if attribute not in orders.columns:
            continue
        value = orders[attribute]
        used = orders.filter(value.notnull() & (value.strip() != "")).select(
            "buyer_id", value=value, t=orders.created_at.epoch_seconds()
        )
        spans = used.group_by(["value", "buyer_id"]).aggregate(
            first=used.t.min(), last=used.t.max()
        )
        accounts = spans.group_by("value").aggregate(accounts=spans.count())
        shared = accounts.filter(
            (accounts.accounts >= 2) & (accounts.accounts <= rules.cap_accounts)
        )
        a = spans.join(shared.select("value"), "value")
        b = a.select(value_b="value", right="buyer_id", first_b="first", last_b="last")
        pairs = a.join(
            b,
            [
                a.value == b.value_b,
                a.buyer_id < b.right,
                a.first <= b.last_b + window,
                b.first_b <= a.last + window,
            ],
        )
        parts.append(
            pairs.select(
                left=pairs.buyer_id,
                right=pairs.right,
                attribute=ibis.literal(attribute),
                value=pairs.value,
            )
        )
    if not parts:
        return None
    return ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]


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
    per_buyer = wh.to_arrow(orders.group_by("buyer_id").aggregate(orders=orders.count()))
    expr = link_expr(wh, at, rules)
    edges = rings.Edges.empty() if expr is None else _edges(wh.to_arrow(expr))
    claim_buyer, claim_seconds = _claims_of(wh, at, expr)
    return rings.ring_features(
        _objects(per_buyer, "buyer_id"),
        per_buyer.column("orders").to_numpy(),
        edges,
        claim_buyer,
        claim_seconds,
        rules,
    )


def _claims_of(wh: Any, at: datetime, links: ibis.Table | None) -> tuple[np.ndarray, np.ndarray]:
    """Buyer and time (epoch seconds) of every claim by a linked buyer."""
    if links is None or not wh.has_table("refunds"):
        return np.zeros(0, dtype=object), np.zeros(0)
    linked = ibis.union(links.select(linked="left"), links.select(linked="right"), distinct=True)
    r = wh.table("refunds")
    r = r.filter(r.requested_at <= at)
    o = _orders(wh, at).select("order_id", "buyer_id")
    j = r.join(o, "order_id")
    j = j.semi_join(linked, j.buyer_id == linked.linked)
    table = wh.to_arrow(j.select("buyer_id", t=j.requested_at.epoch_seconds()))
    return _objects(table, "buyer_id"), table.column("t").to_numpy(zero_copy_only=False)


def _edges(table: pa.Table) -> rings.Edges:
    return rings.Edges(*(_objects(table, c) for c in ("left", "right", "attribute", "value")))


def _objects(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=object)
