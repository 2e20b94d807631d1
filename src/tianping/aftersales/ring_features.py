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
import pyarrow.compute as pc

from tianping.aftersales import credit, rings
from tianping.aftersales.features import _as_of, _orders, buyer_features
from tianping.clock import Clock


def link_expr(wh: Any, as_of: datetime, rules: rings.RingRules) -> ibis.Table | None:
    """Every link ``(left, right, attribute, value)`` with ``left < right``; None: no attributes.

    Two stages per attribute, so that the expensive part touches only shared values. Stage one
    groups the orders by value and keeps the values whose smallest and largest buyer
    differ (used by at least two accounts: a MIN/MAX pair, not a distinct count). Nearly every
    value belongs to one account, so about 1 % of them survive. Stage two re-reads only the
    orders with a surviving value, groups them by ``(attribute, value, buyer)`` into use
    periods, keeps the values with 2 to ``cap_accounts`` accounts and joins the periods that
    overlap once widened by the window. Values of only blanks link
    nobody: the query drops empty strings, :func:`buyer_rings` the links on whitespace (a
    ``TRIM`` here would run on every order).
    """
    orders = _orders(wh, as_of)
    present = [a for a in rings.ATTRIBUTES if a in orders.columns]
    if not present:
        return None

    def periods(a: str) -> ibis.Table:
        # each attribute on its own: grouping one text column is cheaper than (attribute, value)
        value = orders[a]
        shared = (
            orders.filter(value.notnull() & (value != ""))
            .group_by(value=value)
            .aggregate(lo=orders.buyer_id.min(), hi=orders.buyer_id.max())
            .filter(ibis._.lo != ibis._.hi)
            .select("value")
        )
        again = orders.select("buyer_id", "created_at", value=value)
        again = again.semi_join(shared, "value")
        t = again.created_at.epoch_seconds().cast("float64")
        return again.group_by(["value", "buyer_id"]).aggregate(
            attribute=ibis.literal(a), first=t.min(), last=t.max()
        )

    spans = ibis.union(*[periods(a) for a in present], distinct=False)
    accounts = spans.group_by(["attribute", "value"]).aggregate(accounts=spans.count())
    keep = accounts.filter((accounts.accounts >= 2) & (accounts.accounts <= rules.cap_accounts))
    a = spans.semi_join(keep, ["attribute", "value"])
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
    buyers: tuple[np.ndarray, np.ndarray] | None = None,
) -> rings.RingFeatures:
    """Ring features of every buyer with an order up to ``as_of`` (default: now).

    ``buyers``: the buyers' ids and order counts when the caller already has them (the credit
    history has both); the features then come in that order. Otherwise they are read, sorted
    by id so that every engine and every run gives the same order.
    """
    at = _as_of(as_of, clock)
    if buyers is None:
        orders = _orders(wh, at)
        per_buyer = wh.to_arrow(
            orders.group_by("buyer_id").aggregate(orders=orders.count()).order_by("buyer_id")
        )
        buyers = (_objects(per_buyer, "buyer_id"), per_buyer.column("orders").to_numpy())
    expr = link_expr(wh, at, rules)
    edges = rings.Edges.empty() if expr is None else _edges(wh.to_arrow(expr))
    claim_buyer, claim_seconds = _claims_of(wh, at)
    return rings.ring_features(*buyers, edges, claim_buyer, claim_seconds, rules)


def _claims_of(wh: Any, at: datetime) -> tuple[pa.ChunkedArray | np.ndarray, np.ndarray]:
    """Buyer and time (epoch seconds) of every claim (a few per hundred orders)."""
    if not wh.has_table("refunds"):
        return np.zeros(0, dtype=object), np.zeros(0)
    r = wh.table("refunds")
    r = r.filter(r.requested_at <= at)
    j = r.join(_orders(wh, at).select("order_id", "buyer_id"), "order_id")
    table = wh.to_arrow(j.select("buyer_id", t=j.requested_at.epoch_seconds().cast("float64")))
    return table.column("buyer_id"), table.column("t").to_numpy(zero_copy_only=False)


def _edges(table: pa.Table) -> rings.Edges:
    """The links as arrays, without those on a value of only blanks (a blank links nobody)."""
    blank = pc.equal(pc.utf8_trim_whitespace(table.column("value")), "")
    table = table.filter(pc.invert(blank))
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

    Both come in the same buyer order; ``ring.reason(i)`` says what links buyer ``i``. The ring
    features reuse the history's buyers and order counts (one query fewer, no reordering).
    """
    at = _as_of(as_of, clock)
    history = buyer_features(wh, as_of=at)
    ring = buyer_rings(wh, as_of=at, rules=rules, buyers=(history.buyer_id, history.orders))
    scored = dataclasses.replace(history, rings=ring.columns())
    return credit.score_buyers(scored, card), ring
