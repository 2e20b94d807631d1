"""Per-buyer, per-merchant and per-product features from the event tables (warehouse side).

Each question is one Ibis expression over ``orders`` + ``refunds`` (+ ``reviews``), grouped in
the engine, so it runs unchanged on DuckDB and Spark and only one row per buyer, merchant or
product comes back. The pure modules then score those rows.

For the refund service::

    from tianping.aftersales import features
    credit = features.buyer_credit(wh, buyer_ids=["b1"])        # credit.CreditScores
    credit.score[0], credit.explain(0)
    q = features.merchant_quality(wh, merchant_ids=["m1"])      # merchant.QualityScores
    q.score[0], q.explain(0)
    d = features.product_defects(wh)                             # defect.DefectSignals

Rules: history counts up to ``as_of`` (default: now on the injected clock); a refund counts
only if its order is in ``orders``; a refund is *refund-only* when money was refunded
(``refunded_amount > 0``) and the goods were not returned (``returned`` false or empty);
reasons and decisions are matched through :class:`~tianping.aftersales.vocabulary.Vocabulary`.
Merchant and platform norms (category claim rates, platform review mean) are computed over
everyone, then the requested ids are picked out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import ibis
import numpy as np
import pyarrow as pa

from tianping.aftersales import credit, defect, merchant
from tianping.aftersales.vocabulary import DEFAULT_VOCABULARY, Vocabulary
from tianping.clock import Clock, SystemClock, ensure_utc

#: An order counts as on time when delivered within this many hours of payment.
ON_TIME_HOURS = 72


def _as_of(as_of: datetime | None, clock: Clock | None) -> datetime:
    at = as_of if as_of is not None else (clock or SystemClock()).now()
    return ensure_utc(at).replace(tzinfo=None)


def _key(col: ibis.Value) -> ibis.Value:
    return col.strip().lower().replace("-", "_").replace(" ", "_")


def _count_if(cond: ibis.Value) -> ibis.Value:
    return cond.ifelse(1, 0).sum()


def _orders(wh: Any, as_of: datetime) -> ibis.Table:
    o = wh.table("orders")
    return o.filter(o.created_at <= as_of)


def _claims(wh: Any, as_of: datetime, vocab: Vocabulary) -> ibis.Table:
    """Refund requests joined to their order, with the flags the scores count."""
    r = wh.table("refunds")
    r = r.filter(r.requested_at <= as_of)
    o = _orders(wh, as_of).select("order_id", "buyer_id", "merchant_id", "product_id", "category")
    j = r.join(o, "order_id")
    reason = _key(j.reason)
    decision = _key(j.decision.fill_null(""))
    refunded = j.refunded_amount.fill_null(0) > 0
    return j.mutate(
        refund_only=(refunded & ~j.returned.fill_null(False)).ifelse(1, 0),
        appeal_upheld=decision.isin(sorted(vocab.appeal_upheld)).ifelse(1, 0),
        not_received=reason.isin(sorted(vocab.not_received)).ifelse(1, 0),
        misrepresentation=reason.isin(sorted(vocab.misrepresentation)).ifelse(1, 0),
        quality=reason.isin(sorted(vocab.quality)).ifelse(1, 0),
        complaint=reason.isin(sorted(vocab.complaint)).ifelse(1, 0),
        response_hours=(j.decided_at.epoch_seconds() - j.requested_at.epoch_seconds()) / 3600.0,
    )


# -- buyers --------------------------------------------------------------------------------
def buyer_features_expr(
    wh: Any, as_of: datetime, vocab: Vocabulary = DEFAULT_VOCABULARY
) -> ibis.Table:
    """One row per buyer with an order: the raw history :class:`credit.BuyerFeatures` holds.

    ``first_order_at`` is returned instead of the account age, which needs ``as_of``.
    """
    orders = _orders(wh, as_of)
    claims = _claims(wh, as_of, vocab)
    per_cat = orders.group_by("category").aggregate(cat_orders=orders.count())
    cat_claims = claims.group_by("category").aggregate(
        cat_claims=claims.count(), cat_refund_only=claims.refund_only.sum()
    )
    rates = per_cat.left_join(cat_claims, "category").select(
        "category",
        claim_rate=ibis._.cat_claims.fill_null(0) / ibis._.cat_orders,
        refund_only_rate=ibis._.cat_refund_only.fill_null(0) / ibis._.cat_orders,
    )
    with_rates = orders.join(rates, "category")
    history = with_rates.group_by("buyer_id").aggregate(
        orders=with_rates.count(),
        spend_minor=(with_rates.amount.sum() * 10**wh.scale).round().cast("int64"),
        first_order_at=with_rates.created_at.min(),
        expected_claims=with_rates.claim_rate.sum(),
        expected_refund_only=with_rates.refund_only_rate.sum(),
    )
    per_buyer = claims.group_by("buyer_id").aggregate(
        claims=claims.count(),
        refund_only=claims.refund_only.sum(),
        appeals_upheld=claims.appeal_upheld.sum(),
        not_received_claims=claims.not_received.sum(),
        misrepresentation_claims=claims.misrepresentation.sum(),
    )
    weekly = claims.mutate(week=claims.requested_at.truncate("W"))
    weekly = weekly.group_by(["buyer_id", "week"]).aggregate(n=weekly.count())
    bursts = weekly.group_by("buyer_id").aggregate(max_weekly_claims=weekly.n.max())
    counts = [
        "claims",
        "refund_only",
        "appeals_upheld",
        "not_received_claims",
        "misrepresentation_claims",
    ]
    joined = history.left_join(per_buyer, "buyer_id").left_join(bursts, "buyer_id")
    return joined.select(
        "buyer_id",
        "orders",
        "spend_minor",
        "first_order_at",
        "expected_claims",
        "expected_refund_only",
        *[joined[c].fill_null(0).name(c) for c in counts],
        max_weekly_claims=joined.max_weekly_claims.fill_null(0),
    )


def _numpy(table: pa.Table, name: str, dtype: Any = np.float64) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def buyer_features(
    wh: Any,
    *,
    buyer_ids: Sequence[str] | None = None,
    as_of: datetime | None = None,
    clock: Clock | None = None,
    vocab: Vocabulary = DEFAULT_VOCABULARY,
) -> credit.BuyerFeatures:
    """The credit features of every buyer (or of ``buyer_ids``) as of a date.

    Buyers asked for but without any order get an empty history (a new account).
    """
    at = _as_of(as_of, clock)
    expr = buyer_features_expr(wh, at, vocab)
    if buyer_ids is not None:
        expr = expr.filter(expr.buyer_id.isin(list(buyer_ids)))
    table = wh.to_arrow(expr)
    first = table.column("first_order_at").to_numpy(zero_copy_only=False)
    age = (np.datetime64(at, "us") - first.astype("datetime64[us]")) / np.timedelta64(1, "D")
    columns: dict[str, Any] = {
        "buyer_id": table.column("buyer_id").to_numpy(zero_copy_only=False),
        "account_age_days": np.maximum(age, 0.0),
    }
    for name in credit.FEATURE_COLUMNS[1:]:
        columns[name] = _numpy(table, name)
    features = credit.BuyerFeatures.from_columns(columns)
    return features if buyer_ids is None else _in_order(features, list(buyer_ids))


def _in_order(features: credit.BuyerFeatures, ids: list[str]) -> credit.BuyerFeatures:
    """Rows for ``ids`` in that order; unknown buyers get zero history."""
    where = {b: i for i, b in enumerate(features.buyer_id)}
    pos = np.array([where.get(b, -1) for b in ids], dtype=np.int64)
    columns: dict[str, Any] = {"buyer_id": np.asarray(ids, dtype=object)}
    for name in credit.FEATURE_COLUMNS:
        values = getattr(features, name)
        columns[name] = np.where(pos >= 0, values[np.maximum(pos, 0)] if values.size else 0, 0.0)
    return credit.BuyerFeatures.from_columns(columns)


def buyer_credit(
    wh: Any,
    *,
    buyer_ids: Sequence[str] | None = None,
    as_of: datetime | None = None,
    clock: Clock | None = None,
    card: credit.ExpertScorecard = credit.EXPERT_SCORECARD,
    vocab: Vocabulary = DEFAULT_VOCABULARY,
) -> credit.CreditScores:
    """Expert credit scores (with explanations) of every buyer or of ``buyer_ids``."""
    features = buyer_features(wh, buyer_ids=buyer_ids, as_of=as_of, clock=clock, vocab=vocab)
    return credit.score_buyers(features, card)


# -- merchants -----------------------------------------------------------------------------
def merchant_features_expr(
    wh: Any,
    as_of: datetime,
    vocab: Vocabulary = DEFAULT_VOCABULARY,
    on_time_hours: float = ON_TIME_HOURS,
) -> ibis.Table:
    """One row per merchant with an order: the sufficient statistics of its quality score."""
    orders = _orders(wh, as_of)
    claims = _claims(wh, as_of, vocab)
    delivered = orders.delivered_at.notnull() & (orders.delivered_at <= as_of)
    hours = (orders.delivered_at.epoch_seconds() - orders.created_at.epoch_seconds()) / 3600.0
    fulfil = orders.group_by("merchant_id").aggregate(
        orders=orders.count(),
        delivered=_count_if(delivered),
        on_time=_count_if(delivered & (hours <= on_time_hours)),
        mode_known=_count_if(orders.delivery_mode.isin(["door", "station"])),
        door=_count_if(orders.delivery_mode == "door"),
    )
    rv = wh.table("reviews")
    rv = rv.filter(rv.created_at <= as_of).join(
        orders.select("order_id", "merchant_id"), "order_id"
    )
    reviews = rv.group_by("merchant_id").aggregate(
        reviews=rv.count(), rating_sum=rv.rating.sum().cast("float64")
    )
    decided = claims.decided_at.notnull() & (claims.decided_at <= as_of)
    refunds = claims.group_by("merchant_id").aggregate(
        quality_refunds=claims.quality.sum(),
        complaints=claims.complaint.sum(),
        responses=_count_if(decided),
        response_hours_sum=decided.ifelse(claims.response_hours.clip(lower=0), 0.0).sum(),
    )
    joined = fulfil.left_join(reviews, "merchant_id").left_join(refunds, "merchant_id")
    rest = ["reviews", "rating_sum", "quality_refunds", "complaints", "responses"]
    return joined.select(
        "merchant_id",
        "orders",
        "delivered",
        "on_time",
        "mode_known",
        "door",
        *[joined[c].fill_null(0).name(c) for c in rest],
        response_hours_sum=joined.response_hours_sum.fill_null(0.0),
    )


def merchant_features(
    wh: Any,
    *,
    as_of: datetime | None = None,
    clock: Clock | None = None,
    vocab: Vocabulary = DEFAULT_VOCABULARY,
    on_time_hours: float = ON_TIME_HOURS,
) -> merchant.MerchantFeatures:
    """Quality-score statistics of every merchant with an order."""
    at = _as_of(as_of, clock)
    table = wh.to_arrow(merchant_features_expr(wh, at, vocab, on_time_hours))
    columns: dict[str, Any] = {
        "merchant_id": table.column("merchant_id").to_numpy(zero_copy_only=False)
    }
    for name in merchant.FEATURE_COLUMNS:
        columns[name] = _numpy(table, name)
    return merchant.MerchantFeatures.from_columns(columns)


def merchant_quality(
    wh: Any,
    *,
    merchant_ids: Sequence[str] | None = None,
    as_of: datetime | None = None,
    clock: Clock | None = None,
    vocab: Vocabulary = DEFAULT_VOCABULARY,
) -> merchant.QualityScores:
    """Quality scores of every merchant (norms from all), or only of ``merchant_ids``.

    A merchant asked for without any order gets the platform value for every component.
    """
    features = merchant_features(wh, as_of=as_of, clock=clock, vocab=vocab)
    norms = merchant.platform_norms(features)
    if merchant_ids is not None:
        features = _pick_merchants(features, list(merchant_ids))
    return merchant.quality(features, norms)


def _pick_merchants(features: merchant.MerchantFeatures, ids: list[str]):
    where = {m: i for i, m in enumerate(features.merchant_id)}
    pos = np.array([where.get(m, -1) for m in ids], dtype=np.int64)
    columns: dict[str, Any] = {"merchant_id": np.asarray(ids, dtype=object)}
    for name in merchant.FEATURE_COLUMNS:
        values = getattr(features, name)
        columns[name] = np.where(pos >= 0, values[np.maximum(pos, 0)] if values.size else 0, 0.0)
    return merchant.MerchantFeatures.from_columns(columns)


# -- products ------------------------------------------------------------------------------
def product_counts_expr(
    wh: Any, as_of: datetime, vocab: Vocabulary = DEFAULT_VOCABULARY
) -> ibis.Table:
    """One row per (product, category) with orders and quality-reason refund requests."""
    orders = _orders(wh, as_of).filter(ibis._.product_id.notnull())
    claims = _claims(wh, as_of, vocab).filter(ibis._.product_id.notnull())
    sold = orders.group_by(["product_id", "category"]).aggregate(orders=orders.count())
    bad = claims.group_by(["product_id", "category"]).aggregate(
        quality_refunds=claims.quality.sum()
    )
    joined = sold.left_join(bad, ["product_id", "category"])
    return joined.select(
        "product_id", "category", "orders", quality_refunds=joined.quality_refunds.fill_null(0)
    )


def product_counts(
    wh: Any,
    *,
    as_of: datetime | None = None,
    clock: Clock | None = None,
    vocab: Vocabulary = DEFAULT_VOCABULARY,
) -> defect.ProductCounts:
    """Orders and quality refunds of every product sold."""
    table = wh.to_arrow(product_counts_expr(wh, _as_of(as_of, clock), vocab))
    return defect.ProductCounts(
        table.column("product_id").to_numpy(zero_copy_only=False),
        table.column("category").to_numpy(zero_copy_only=False),
        _numpy(table, "orders"),
        _numpy(table, "quality_refunds"),
    )


def product_defects(
    wh: Any,
    *,
    k: float = 2.0,
    threshold: float = 0.95,
    min_refunds: int = 3,
    as_of: datetime | None = None,
    clock: Clock | None = None,
    vocab: Vocabulary = DEFAULT_VOCABULARY,
) -> defect.DefectSignals:
    """The defect signal of every product sold (see :func:`defect.defect_signals`)."""
    counts = product_counts(wh, as_of=as_of, clock=clock, vocab=vocab)
    return defect.defect_signals(counts, k=k, threshold=threshold, min_refunds=min_refunds)
