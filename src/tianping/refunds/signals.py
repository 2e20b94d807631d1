"""Buyer credit, merchant quality and the defect flag from what the store knows.

The store holds orders and refund requests recorded through the API. For one decision the
buyer's and the merchant's history are read with a few indexed queries and scored by
:mod:`tianping.aftersales.credit`, :mod:`~tianping.aftersales.merchant` and
:mod:`~tianping.aftersales.defect`. The platform-wide references those scores compare with
(each category's claim and refund-only rates, the merchants' pooled component values, each
category's defect prior) need a pass over every row, so they are computed at most once per
``ttl`` and shared by all requests (:class:`Norms`). A merchant's quality score and a
product's defect flag are slow judgements over many orders, so they are kept with the
references for as long (``ttl = 0`` recomputes everything each time); the buyer's own history
is always read fresh, since a burst of claims must count at once. Abuse rings (accounts linked
by a shared device, address or card; :func:`ring_memberships`) are a platform-wide pass too and
are kept with the references: a ring's burst counts within ``ttl``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

import numpy as np
from sqlalchemy.orm import Session

from tianping.aftersales import credit, defect, merchant, rings
from tianping.aftersales.vocabulary import DEFAULT_VOCABULARY, normalise
from tianping.refunds import repository as repo

VOCAB = DEFAULT_VOCABULARY
#: Claims within this many days count as "recent" for the policy input.
RECENT_DAYS = 30
#: A buyer with this many claims in 7 days, or this many not-received claims in 30, is flagged.
BURST_CLAIMS_7D = 5
NOT_RECEIVED_30D = 3
#: Most merchants and products whose scores one snapshot keeps.
CACHE_LIMIT = 200_000


@dataclass(frozen=True)
class Snapshot:
    """Platform references at one moment."""

    computed_at: datetime
    claim_rate: dict[str, float]
    refund_only_rate: dict[str, float]
    merchant_norms: merchant.PlatformNorms
    defect_priors: defect.CategoryPriors | None
    cache: dict = field(default_factory=dict, compare=False, repr=False)
    #: ``(product, category) → defective`` for every product known when the snapshot was taken.
    defect_flags: dict = field(default_factory=dict, compare=False, repr=False)
    #: ``buyer → policy inputs`` of every buyer linked to others (:func:`ring_memberships`).
    rings: dict = field(default_factory=dict, compare=False, repr=False)

    def cached(self, key: tuple, compute):
        """``compute()`` once per snapshot and key (bounded: cleared when it grows too big)."""
        try:
            return self.cache[key]
        except KeyError:
            pass
        if len(self.cache) >= CACHE_LIMIT:
            self.cache.clear()
        value = self.cache[key] = compute()
        return value


class Norms:
    """Platform references, recomputed when older than ``ttl`` (0 = every time)."""

    def __init__(self, ttl: timedelta = timedelta(minutes=5)):
        self.ttl = ttl
        self._snap: Snapshot | None = None
        self._lock = threading.Lock()

    def refresh(self, session: Session, now: datetime, *, older_than: timedelta) -> None:
        """Recompute ahead of time (from a background task) when the snapshot is this old."""
        snap = self._snap
        if self.ttl and (snap is None or now - snap.computed_at >= older_than):
            fresh = _compute(session, now)
            with self._lock:
                self._snap = fresh

    def get(self, session: Session, now: datetime) -> Snapshot:
        """The platform references as of ``now``: the cached ones while younger than ``ttl``, else recomputed."""
        snap = self._snap
        if snap is None or now - snap.computed_at >= self.ttl or now < snap.computed_at:
            snap = _compute(session, now)
            with self._lock:
                self._snap = snap
        return snap


def _compute(session: Session, now: datetime) -> Snapshot:
    claim_rate, ro_rate = {}, {}
    for category, orders, claims, refund_only in repo.category_rates(session):
        claim_rate[category] = claims / orders if orders else 0.0
        ro_rate[category] = refund_only / orders if orders else 0.0
    features = _merchant_features(session, None)
    norms = merchant.platform_norms(features) if len(features) else merchant.PlatformNorms({})
    counts = _product_counts(session, None)
    priors = defect.category_priors(counts) if len(counts.product_id) else None
    flags = {}
    if priors is not None:
        # Each product's judgement depends only on its own counts and its category's prior,
        # so judging them all at once here equals judging each on its first request.
        judged = defect.defect_signals(counts, priors=priors)
        flags = {
            (p, c): bool(f)
            for p, c, f in zip(judged.product_id, judged.category, judged.flagged, strict=True)
        }
    return Snapshot(
        now, claim_rate, ro_rate, norms, priors, defect_flags=flags,
        rings=ring_memberships(session, now),
    )  # fmt: skip


def ring_memberships(
    session: Session, now: datetime, rules: rings.RingRules = rings.RingRules()
) -> dict[str, dict[str, int | str]]:
    """The ring inputs of every buyer linked to others, from the store's orders and requests.

    Like the warehouse's (:func:`tianping.aftersales.ring_features.buyer_rings`): accounts that
    used the same device, address or card within the window, values of more than
    ``cap_accounts`` accounts linking nobody, rings as connected components, bursts of claims
    within ``burst_hours``. A platform-wide pass, so it is kept with the other references (at
    most ``ttl`` old); a buyer absent from it is linked to no one. The values: ``ring_size``,
    ``ring_burst_accounts`` and ``ring_reason`` (the shared values a decision cites).
    """
    periods = repo.shared_identity_periods(
        session, rings.ATTRIBUTES, now=now, cap_accounts=rules.cap_accounts
    )
    if not periods:
        return {}
    attribute, value, buyer, first, last = (
        np.array(c, dtype=object) for c in zip(*periods, strict=True)
    )
    edges = rings.links_from_periods(
        attribute, value, buyer, _seconds(first), _seconds(last), rules
    )
    linked = sorted(set(edges.left.tolist()) | set(edges.right.tolist()))
    if not linked:
        return {}
    counts = dict(repo.buyers_order_counts(session, linked, now=now))
    claims = repo.buyers_claim_times(session, linked, now=now)
    claim_buyer = np.array([b for b, _t in claims], dtype=object)
    claim_at = _seconds(np.array([t for _b, t in claims], dtype=object))
    f = rings.ring_features(
        np.array(linked, dtype=object),
        np.array([counts.get(b, 0) for b in linked]),
        edges, claim_buyer, claim_at, rules,
    )  # fmt: skip
    return {
        str(b): {
            "ring_size": int(f.ring_size[i]),
            "ring_burst_accounts": int(f.ring_burst_accounts[i]),
            "ring_reason": f.reason(i),
        }
        for i, b in enumerate(f.buyer_id)
        if f.ring[i] >= 0
    }


def _seconds(instants: np.ndarray) -> np.ndarray:
    return np.array([t.timestamp() for t in instants], dtype=np.float64)


def ring_inputs(buyer_id: str, snap: Snapshot) -> dict[str, int | str]:
    """The buyer's ring inputs for a policy (none when linked to no one: the defaults apply)."""
    return dict(snap.rings.get(buyer_id, {}))


@dataclass(frozen=True)
class BuyerHistory:
    """What the store knows of a buyer: orders per category and every refund request."""

    by_category: list  # (category, orders, spend, first paid_at)
    requests: list  # (id, created_at, reason, refunded_minor, returned, appeals_upheld)


class RequestRow(NamedTuple):
    """One of :attr:`BuyerHistory.requests`, as :func:`repository.buyer_requests` reads it."""

    id: str
    created_at: datetime
    reason: str
    refunded_minor: int
    returned: bool
    appeals_upheld: int


def buyer_history(buyer_id: str, *, session: Session) -> BuyerHistory:
    """The buyer's history in two indexed queries (orders by category, requests)."""
    return BuyerHistory(
        repo.buyer_orders_by_category(session, buyer_id), repo.buyer_requests(session, buyer_id)
    )


def buyer_histories(buyer_ids, *, session: Session) -> dict[str, BuyerHistory]:
    """:func:`buyer_history` of several buyers in the same two queries (every buyer present)."""
    out = {b: BuyerHistory([], []) for b in buyer_ids}
    for buyer, *row in repo.buyers_orders_by_category(session, out):
        out[buyer].by_category.append(tuple(row))
    for buyer, *row in repo.buyers_requests(session, out):
        out[buyer].requests.append(RequestRow(*row))
    return out


def note_request(history: BuyerHistory, req) -> None:
    """Add a request just written to a history read before it (as a fresh read would show it)."""
    history.requests.append(
        RequestRow(req.id, req.created_at, req.reason, req.refunded_minor, req.returned, 0)
    )


def _feature_values(
    buyer_id: str, *, session: Session, now: datetime, snap: Snapshot, history: BuyerHistory | None
) -> dict[str, float]:
    h = history or buyer_history(buyer_id, session=session)
    reqs = h.requests
    n_orders = sum(n for _c, n, _s, _f in h.by_category)
    spend = sum(int(s) for _c, _n, s, _f in h.by_category)
    first_paid = min((f for _c, _n, _s, f in h.by_category if f is not None), default=None)
    reasons = [normalise(r.reason) for r in reqs]
    age = max((now - first_paid).days, 0) if first_paid is not None else 0
    weeks: dict[tuple[int, int], int] = {}
    for r in reqs:
        week = r.created_at.isocalendar()[:2]
        weeks[week] = weeks.get(week, 0) + 1
    by_cat = [(c, n) for c, n, _s, _f in h.by_category]
    return {
        "account_age_days": age,
        "orders": n_orders,
        "spend_minor": spend,
        "claims": len(reqs),
        "expected_claims": sum(n * snap.claim_rate.get(c, 0.0) for c, n in by_cat),
        "refund_only": sum(1 for r in reqs if r.refunded_minor > 0 and not r.returned),
        "expected_refund_only": sum(n * snap.refund_only_rate.get(c, 0.0) for c, n in by_cat),
        "appeals_upheld": sum(int(r.appeals_upheld) for r in reqs),
        "max_weekly_claims": max(weeks.values(), default=0),
        "not_received_claims": sum(r in VOCAB.not_received for r in reasons),
        "misrepresentation_claims": sum(r in VOCAB.misrepresentation for r in reasons),
    }


def buyer_features(
    buyer_id: str,
    *,
    session: Session,
    now: datetime,
    snap: Snapshot,
    history: BuyerHistory | None = None,
):
    """The buyer's history as :class:`~tianping.aftersales.credit.BuyerFeatures`."""
    values = _feature_values(buyer_id, session=session, now=now, snap=snap, history=history)
    return credit.BuyerFeatures.from_columns(
        {"buyer_id": [buyer_id], **{k: [v] for k, v in values.items()}}
    )


def buyer_score(
    buyer_id: str,
    *,
    session: Session,
    now: datetime,
    snap: Snapshot,
    history: BuyerHistory | None = None,
) -> int:
    """The buyer's credit score (350–950) alone: :func:`buyer_credit`'s, without the
    explanation (what a decision stores)."""
    values = _feature_values(buyer_id, session=session, now=now, snap=snap, history=history)
    return credit.score_one(values)


def buyer_credit(
    buyer_id: str,
    *,
    session: Session,
    now: datetime,
    snap: Snapshot,
    history: BuyerHistory | None = None,
):
    """The buyer's :class:`~tianping.aftersales.credit.CreditScores` (one row)."""
    features = buyer_features(buyer_id, session=session, now=now, snap=snap, history=history)
    return credit.score_buyers(features)


def _merchant_features(session: Session, merchant_id: str | None) -> merchant.MerchantFeatures:
    orders = dict(repo.merchant_order_counts(session, merchant_id))
    ids = sorted(orders) if merchant_id is None else [merchant_id]
    pos = {m: i for i, m in enumerate(ids)}
    cols = {
        name: np.zeros(len(ids))
        for name in ("quality_refunds", "complaints", "responses", "response_hours_sum")
    }
    for m, reason, created_at, decided_at in repo.merchant_requests(session, merchant_id):
        i = pos.get(m)
        if i is None:
            continue
        key = normalise(reason)
        cols["quality_refunds"][i] += key in VOCAB.quality
        cols["complaints"][i] += key in VOCAB.complaint
        if decided_at is not None:
            cols["responses"][i] += 1
            cols["response_hours_sum"][i] += (decided_at - created_at).total_seconds() / 3600
    return merchant.MerchantFeatures.from_columns(
        {"merchant_id": ids, "orders": [orders.get(m, 0) for m in ids], **cols}
    )


def merchant_quality(merchant_id: str, *, session: Session, snap: Snapshot):
    """The merchant's :class:`~tianping.aftersales.merchant.QualityScores` (one row).

    Only components the store has data for count: refund rates, complaints and response time
    (reviews and delivery promises are not reported to the refund API).
    """

    def compute():
        features = _merchant_features(session, merchant_id)
        norms = (
            snap.merchant_norms if snap.merchant_norms.values else merchant.platform_norms(features)
        )
        return merchant.quality(features, norms)

    return snap.cached(("merchant", merchant_id), compute)


def _product_counts(session: Session, product_id: str | None) -> defect.ProductCounts:
    rows = repo.product_counts(session, VOCAB.quality, product_id)
    return defect.ProductCounts(
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]
    )


def defect_flag(product_id: str, category: str, *, session: Session, snap: Snapshot) -> bool:
    """Whether the product is judged defective from its quality refunds against its category.

    Products known when the references were computed were judged then; a product first seen
    since is judged on its first request and kept as long.
    """
    known = snap.defect_flags.get((product_id, category))
    if known is not None:
        return known

    def compute() -> bool:
        counts = _product_counts(session, product_id)
        if snap.defect_priors is None or not len(counts.product_id):
            return False
        if category not in set(snap.defect_priors.category):
            return False
        return bool(defect.defect_signals(counts, priors=snap.defect_priors).flagged[0])

    return snap.cached(("product", product_id, category), compute)


def claim_pattern(
    buyer_id: str,
    reason: str,
    *,
    session: Session,
    now: datetime,
    history: BuyerHistory | None = None,
) -> tuple[int, bool]:
    """``(claims in the last 30 days, abnormal)`` for a new request by the buyer.

    The count excludes the new request; the abnormal-behaviour flag includes it: a burst of
    :data:`BURST_CLAIMS_7D` claims in 7 days, or :data:`NOT_RECEIVED_30D` "not received" /
    "empty parcel" claims in 30 days.
    """
    reqs = (history or buyer_history(buyer_id, session=session)).requests
    recent = [r for r in reqs if now - r.created_at <= timedelta(days=RECENT_DAYS)]
    week = 1 + sum(1 for r in recent if now - r.created_at <= timedelta(days=7))
    not_received = sum(normalise(r.reason) in VOCAB.not_received for r in recent)
    not_received += normalise(reason) in VOCAB.not_received
    return len(recent), week >= BURST_CLAIMS_7D or not_received >= NOT_RECEIVED_30D
