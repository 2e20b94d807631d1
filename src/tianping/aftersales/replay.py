"""What-if replay of refund policies over the warehouse's refunds (warehouse side).

One Ibis query per question, run in the engine (DuckDB or Spark): the refund requests of the
window joined to their orders, each request's claim history of the 30 days before it, the buyers'
credit scores, the merchants' quality scores and the products' defect signal as of one date
(:mod:`tianping.aftersales.features`). Only those columns come back, as Arrow, and the
vectorised evaluator decides every request; :mod:`tianping.aftersales.whatif` sums them up.
``docs/aftersales.md`` documents how each policy input is derived.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import ibis
import numpy as np
import pyarrow as pa

from tianping.aftersales import credit, features, whatif
from tianping.aftersales.policy import ACTIONS, Coded, Policy, evaluate_batch
from tianping.aftersales.two_sided import Truth, error_row
from tianping.aftersales.vocabulary import DEFAULT_VOCABULARY, REASON_SYNONYMS, Vocabulary
from tianping.errors import InvalidInput, UsageError
from tianping.money import exponent_of, format_major

#: Warehouse table where a simulation records which refund requests were abuse.
ABUSE_TRUTH_TABLE = "refund_truth"
#: Days of claim history counted in ``buyer_recent_claims`` and the abnormal-behaviour flag.
RECENT_DAYS = 30
#: Prior not-received / empty-parcel claims (within ``RECENT_DAYS``) that mark a claim abnormal.
ABNORMAL_NOT_RECEIVED = 2
#: Prior counterfeit / not-as-described claims (within ``RECENT_DAYS``) that mark it abnormal.
ABNORMAL_MISREPRESENTATION = 3


@dataclass(frozen=True)
class ReplayInputs:
    """The policy inputs of every refund request in a window, row for row.

    Attributes:
        refund_ids: the requests, sorted by id.
        buyer_ids: the buyer of each request.
        columns: one array per policy input, ready for :func:`evaluate_batch`.
        abusive: ground truth per request (None where the warehouse has none).
        unmatched: requests in the window whose order is not in ``orders`` (left out).
        notes: how the inputs were derived (score date, truth source).
    """

    refund_ids: np.ndarray
    buyer_ids: np.ndarray
    columns: dict[str, Any]
    abusive: np.ndarray | None
    unmatched: int
    notes: tuple[str, ...]


@dataclass(frozen=True)
class ReplayReport:
    """A replay: the window, each policy's outcome, and what changes between them."""

    start: date
    end: date
    currency: str
    requests: int
    unmatched: int
    notes: tuple[str, ...]
    outcomes: tuple[whatif.PolicyOutcome, ...]
    comparison: whatif.Comparison | None
    split: str | None = None
    arms: tuple[whatif.ArmOutcome, ...] = ()


def replay(
    wh: Any,
    policy: Policy,
    *,
    start: date,
    end: date,
    against: Policy | None = None,
    scores_as_of: datetime | None = None,
    sample: int = 10,
    seed: int = 0,
    currency: str | None = None,
    vocab: Vocabulary = DEFAULT_VOCABULARY,
    split: str | None = None,
    appeals: Mapping[str, bool] | None = None,
) -> ReplayReport:
    """Decide every refund request from ``start`` to ``end`` (both days included, UTC) again.

    Args:
        wh: the warehouse.
        policy: the policy replayed.
        start, end: the window of ``requested_at`` days.
        against: a second policy to compare with.
        scores_as_of: when buyer, merchant and product scores are taken (default: the start of
            the window, so no request is judged on history that came after it).
        sample: how many changed decisions to show.
        seed: the seed of that sample.
        currency: the warehouse's currency (settings); default: trust the policies'.
        vocab: reason groups (shared with the scores).
        split: also A/B test ``policy`` (control) against ``against`` (treatment): an
            experiment of this name (and salt) splits buyers evenly, and each arm's requests
            are decided by its policy (:func:`tianping.aftersales.whatif.ab_split`).
        appeals: decided merchant appeals by refund id (True: upheld, the claim was abuse;
            False: dismissed, it was honest), the two-sided errors' source where the warehouse
            has no ground truth (:func:`tianping.refunds.service.appeal_outcomes`).

    Raises:
        UsageError: a policy's currency is not the warehouse's, the window is empty, or a
            split has no ``against`` policy.
    """
    if split is not None and against is None:
        raise UsageError("an A/B split needs a second policy (--against)", field="split")
    for p in (policy, against):
        if p is not None and (
            p.currency != (currency or p.currency) or exponent_of(p.currency) != wh.scale
        ):
            raise UsageError(
                f"policy {p.name} decides in {p.currency}, the warehouse holds {currency or 'another currency'}",
                field="policy",
            )
    inputs = replay_inputs(wh, start=start, end=end, scores_as_of=scores_as_of, vocab=vocab)
    batches = [
        evaluate_batch(p, inputs.columns | {"currency": p.currency}) for p in (policy, against) if p
    ]
    truth, truth_note = _truth(inputs, appeals)
    asked = inputs.columns["amount_minor"]
    comparison = None
    if against is not None:
        comparison = whatif.compare(
            batches[0], batches[1], inputs.refund_ids, sample=sample, seed=seed
        )
    arms: tuple[whatif.ArmOutcome, ...] = ()
    if split is not None:
        experiment = whatif.policy_experiment(split, ["control", "treatment"])
        arms = tuple(
            whatif.ab_split(experiment, batches, inputs.buyer_ids, inputs.abusive,
                            amount_minor=asked, truth=truth)
        )  # fmt: skip
    return ReplayReport(
        start=start,
        end=end,
        currency=policy.currency,
        requests=len(inputs.refund_ids),
        unmatched=inputs.unmatched,
        notes=(*inputs.notes, truth_note),
        outcomes=tuple(
            whatif.outcome(b, inputs.abusive, amount_minor=asked, truth=truth) for b in batches
        ),
        comparison=comparison,
        split=split,
        arms=arms,
    )


def _truth(inputs: ReplayInputs, appeals: Mapping[str, bool] | None) -> tuple[Truth | None, str]:
    """What the two-sided errors are judged by: ground truth, else appeal outcomes, else nothing."""
    if inputs.abusive is not None:
        return Truth.from_abusive(inputs.abusive), "two-sided errors: ground truth (refund_truth)"
    if appeals is not None:
        truth = Truth.from_appeals(inputs.refund_ids, dict(appeals))
        known = int((truth.codes >= 0).sum())
        return truth, (
            f"two-sided errors: merchant appeals in the store ({known} of "
            f"{len(inputs.refund_ids)} request(s) appealed and decided: upheld = abusive, "
            "dismissed = honest; rates are among those)"
        )
    return None, "two-sided errors unknown: no ground truth and no appeal outcomes"


def replay_inputs(
    wh: Any,
    *,
    start: date,
    end: date,
    scores_as_of: datetime | None = None,
    vocab: Vocabulary = DEFAULT_VOCABULARY,
) -> ReplayInputs:
    """The policy inputs of every refund request requested from ``start`` to ``end``."""
    if end < start:
        raise UsageError(f"the window ends ({end}) before it starts ({start})", field="to")
    lo = datetime.combine(start, time(0))
    hi = datetime.combine(end + timedelta(days=1), time(0))
    as_of = (
        scores_as_of.astimezone(UTC).replace(tzinfo=None)
        if scores_as_of and scores_as_of.tzinfo
        else (scores_as_of or lo)
    )
    table = wh.to_arrow(_requests_expr(wh, lo, hi, vocab).order_by("refund_id"))
    in_window = wh.table("refunds")
    in_window = in_window.filter((in_window.requested_at >= lo) & (in_window.requested_at < hi))
    unmatched = int(wh.execute(in_window.count())) - table.num_rows
    buyer, buyer_note = _buyer_scores(wh, table.column("buyer_id"), as_of)
    merchant = _merchant_scores(wh, table.column("merchant_id"), as_of)
    defect = _defect_flags(wh, table.column("product_id"), as_of)
    abusive, truth_note = _abuse_truth(wh, table.column("refund_id"))
    rings, ring_note = _ring_inputs(wh, table.column("buyer_id"), as_of)
    columns = {
        "amount_minor": _np(table, "amount_minor", np.int64),
        "category": _coded(table.column("category")),
        "reason": _coded(table.column("reason")),
        "buyer_score": buyer,
        "merchant_score": merchant,
        "defect_flag": defect,
        "delivered": _np(table, "delivered", bool),
        "days_since_delivery": _np(table, "days_since_delivery", np.int64),
        "buyer_recent_claims": _np(table, "recent_claims", np.int64),
        "abnormal_behaviour": _np(table, "abnormal", bool),
        **rings,
    }
    notes = (
        f"buyer, merchant and product scores as of {as_of.isoformat(sep=' ')} UTC",
        buyer_note,
        f"abnormal behaviour: >= {ABNORMAL_NOT_RECEIVED} not-received/empty-parcel or >= "
        f"{ABNORMAL_MISREPRESENTATION} counterfeit/not-as-described claims in the prior {RECENT_DAYS} days",
        truth_note,
        ring_note,
    )
    return ReplayInputs(
        refund_ids=table.column("refund_id").to_numpy(zero_copy_only=False).astype(object),
        buyer_ids=table.column("buyer_id").to_numpy(zero_copy_only=False).astype(object),
        columns=columns,
        abusive=abusive,
        unmatched=unmatched,
        notes=notes,
    )


def requesting_buyers(wh: Any, *, start: date, end: date) -> np.ndarray:
    """The distinct buyers with a refund request from ``start`` to ``end`` (UTC days, included)."""
    lo = datetime.combine(start, time(0))
    hi = datetime.combine(end + timedelta(days=1), time(0))
    r = wh.table("refunds")
    o = wh.table("orders").select("order_id", "buyer_id")
    w = r.filter((r.requested_at >= lo) & (r.requested_at < hi)).join(o, "order_id")
    rows = wh.to_arrow(w.select("buyer_id").distinct())
    return rows.column("buyer_id").to_numpy(zero_copy_only=False).astype(str)


def _key(col: ibis.Value) -> ibis.Value:
    """The vocabulary's normalisation of a reason, in the engine."""
    return col.strip().lower().replace("-", "_").replace(" ", "_")


def _canonical(col: ibis.Value) -> ibis.Value:
    """:func:`~tianping.aftersales.vocabulary.canonical_reason`, in the engine."""
    key = _key(col)
    return key.substitute(REASON_SYNONYMS, else_=key)


def _requests_expr(wh: Any, lo: datetime, hi: datetime, vocab: Vocabulary) -> ibis.Table:
    r = wh.table("refunds")
    o = wh.table("orders").select(
        "order_id", "buyer_id", "merchant_id", "product_id", "category", "delivered_at"
    )
    w = r.filter((r.requested_at >= lo) & (r.requested_at < hi)).join(o, "order_id")
    delivered = w.delivered_at.notnull() & (w.delivered_at <= w.requested_at)
    seconds = w.requested_at.epoch_seconds() - w.delivered_at.epoch_seconds()
    w = w.select(
        "refund_id",
        "buyer_id",
        "merchant_id",
        "product_id",
        category=w.category.fill_null(""),
        reason=_canonical(w.reason.fill_null("")),
        requested_at=w.requested_at,
        amount_minor=(w.requested_amount * 10**wh.scale).round().cast("int64"),
        delivered=delivered,
        days_since_delivery=delivered.ifelse((seconds / 86400).floor(), 0).cast("int64"),
    )
    history = _recent_claims(wh, w, lo, hi, vocab)
    j = w.left_join(history, "refund_id")
    return j.select(
        *[j[c] for c in w.columns if c != "requested_at"],
        recent_claims=j.recent_claims.fill_null(0).cast("int64"),
        abnormal=(j.not_received.fill_null(0) >= ABNORMAL_NOT_RECEIVED)
        | (j.misrepresentation.fill_null(0) >= ABNORMAL_MISREPRESENTATION),
    )


def _recent_claims(
    wh: Any, w: ibis.Table, lo: datetime, hi: datetime, vocab: Vocabulary
) -> ibis.Table:
    """Per request: the same buyer's requests in the ``RECENT_DAYS`` days before it."""
    r = wh.table("refunds")
    o = wh.table("orders").select("order_id", h_buyer="buyer_id")
    h = r.filter((r.requested_at >= lo - timedelta(days=RECENT_DAYS)) & (r.requested_at < hi)).join(
        o, "order_id"
    )
    reason = _key(h.reason)
    h = h.select(
        h_at=h.requested_at,
        h_buyer=h.h_buyer,
        h_not_received=reason.isin(sorted(vocab.not_received)).ifelse(1, 0),
        h_misrep=reason.isin(sorted(vocab.misrepresentation)).ifelse(1, 0),
    )
    pairs = w.select("refund_id", "buyer_id", "requested_at").join(
        h,
        [
            ibis._.buyer_id == h.h_buyer,
            h.h_at < ibis._.requested_at,
            h.h_at >= ibis._.requested_at - ibis.interval(days=RECENT_DAYS),
        ],
    )
    return pairs.group_by("refund_id").aggregate(
        recent_claims=pairs.count(),
        not_received=pairs.h_not_received.sum(),
        misrepresentation=pairs.h_misrep.sum(),
    )


def _buyer_scores(wh: Any, buyer_ids: pa.ChunkedArray, as_of: datetime) -> tuple[np.ndarray, str]:
    scores = features.buyer_credit(wh, as_of=as_of)
    new = _new_account_score()
    known = dict(zip(scores.buyer_id.tolist(), scores.score.tolist(), strict=True))
    ids = buyer_ids.to_pylist()
    values = np.array([known.get(b, new) for b in ids], dtype=np.float64)
    fresh = sum(b not in known for b in set(ids))
    note = f"buyer credit: expert scorecard (docs/aftersales.md); {fresh} buyer(s) without history score {new}"
    return values, note


def _new_account_score() -> int:
    empty = credit.BuyerFeatures.from_columns({"buyer_id": np.array(["new"], dtype=object)})
    return int(credit.score_buyers(empty).score[0])


def _merchant_scores(wh: Any, merchant_ids: pa.ChunkedArray, as_of: datetime) -> np.ndarray:
    ids = merchant_ids.to_pylist()
    distinct = sorted(set(ids))
    if not distinct:
        return np.zeros(0)
    q = features.merchant_quality(wh, merchant_ids=distinct, as_of=as_of)
    known = dict(zip(q.merchant_id.tolist(), q.score.tolist(), strict=True))
    return np.clip(np.array([known[m] for m in ids], dtype=np.float64), 0.0, 5.0)


def _defect_flags(wh: Any, product_ids: pa.ChunkedArray, as_of: datetime) -> np.ndarray:
    signals = features.product_defects(wh, as_of=as_of)
    flagged = set(signals.product_id[np.asarray(signals.flagged, dtype=bool)].tolist())
    return np.array([p in flagged for p in product_ids.to_pylist()], dtype=bool)


def _ring_inputs(
    wh: Any, buyer_ids: pa.ChunkedArray, as_of: datetime
) -> tuple[dict[str, np.ndarray], str]:
    """Each request's buyer's ring inputs as of ``as_of`` (no later claim or order is seen);
    none (absent = linked to no one) when the orders carry no identity attributes."""
    from tianping.aftersales import ring_features

    orders = wh.table("orders")
    if not any(a in orders.columns for a in ring_features.rings.ATTRIBUTES):
        return {}, "ring inputs: none (the orders carry no device, address or card)"
    rf = ring_features.buyer_rings(wh, as_of=as_of)
    at = rf.positions(buyer_ids)
    found = at >= 0  # buyers without an order before as_of stay linked to no one
    size, burst = np.ones(at.size, np.int64), np.zeros(at.size, np.int64)
    size[found] = rf.ring_size[at[found]]
    burst[found] = rf.ring_burst_accounts[at[found]]
    note = (
        f"ring inputs as of {as_of.isoformat(sep=' ')} UTC: {int((size > 1).sum())} request(s) "
        f"from buyers linked to others, {int(((size >= rf.rules.min_size) & (burst >= rf.rules.min_burst_accounts)).sum())} "
        "in a ring that claimed in a burst"
    )
    return {"ring_size": size, "ring_burst_accounts": burst}, note


def _abuse_truth(wh: Any, refund_ids: pa.ChunkedArray) -> tuple[np.ndarray | None, str]:
    if not wh.has_table(ABUSE_TRUTH_TABLE):
        return (
            None,
            f"abuse loss unavailable: no {ABUSE_TRUTH_TABLE} table (simulator ground truth)",
        )
    truth = wh.table(ABUSE_TRUTH_TABLE)
    missing = {"refund_id", "abusive"} - set(truth.columns)
    if missing:
        raise InvalidInput(
            f"table {ABUSE_TRUTH_TABLE} lacks column(s) {', '.join(sorted(missing))}",
            field=ABUSE_TRUTH_TABLE,
        )
    rows = wh.to_arrow(truth.filter(truth.abusive).select("refund_id"))
    abusers = set(rows.column("refund_id").to_pylist())
    values = np.array([r in abusers for r in refund_ids.to_pylist()], dtype=bool)
    return (
        values,
        f"abuse truth: {ABUSE_TRUTH_TABLE} ({int(values.sum())} abusive request(s) in the window)",
    )


def _np(table: pa.Table, name: str, dtype: Any) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _coded(column: pa.ChunkedArray) -> Coded:
    encoded = column.combine_chunks().dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    return Coded(codes, [str(v) for v in encoded.dictionary.to_pylist()])


def report_sections(report: ReplayReport) -> dict[str, list[dict[str, object]]]:
    """The report as titled lists of rows (money in major units) for tables or JSON."""
    cur = report.currency
    names = [f"{o.policy_name}@{o.policy_version[:12]}" for o in report.outcomes]
    sections: dict[str, list[dict[str, object]]] = {
        "window": [
            {
                "from": report.start,
                "to": report.end,
                "requests": report.requests,
                "unmatched": report.unmatched,
            }
        ],
        "outcome": [
            _outcome_row(name, o, cur) for name, o in zip(names, report.outcomes, strict=True)
        ],
        "decisions by action": [
            {
                "action": a,
                **{n: o.by_action[a] for n, o in zip(names, report.outcomes, strict=True)},
            }
            for a in ACTIONS
        ],
    }
    c = report.comparison
    if c is not None:
        sections["comparison"] = [
            {"from_policy": c.base, "to_policy": c.other, "changed": c.changed}
        ]
        sections["changes by action"] = [
            {k: v for k, v in t.items() if k != "refund_change_minor"}
            | {"refund_change": format_major(int(t["refund_change_minor"]), cur)}
            for t in c.transitions
        ]
        sections["sample of changed decisions"] = c.sample
    if report.arms:
        sections[f"A/B split by buyer (experiment {report.split})"] = [
            {"arm": a.variant, "buyers": a.buyers, **_outcome_row(f"{names[i]}", a.outcome, cur)}
            for i, a in enumerate(report.arms)
        ]
    if any(o.errors is not None for o in report.outcomes):
        sections["two-sided errors"] = [
            error_row(name, o.errors, cur)
            for name, o in zip(names, report.outcomes, strict=True)
            if o.errors is not None
        ]
        if report.arms:
            sections[f"two-sided errors by arm (experiment {report.split})"] = [
                {"arm": a.variant, **error_row(names[i], a.outcome.errors, cur)}
                for i, a in enumerate(report.arms)
                if a.outcome.errors is not None
            ]
    sections["notes"] = [{"note": n} for n in report.notes]
    return sections


def _outcome_row(name: str, o: whatif.PolicyOutcome, cur: str) -> dict[str, object]:
    return {
        "policy": name,
        "requests": o.requests,
        "automatic": o.automatic,
        "auto_decision_rate": round(o.auto_decision_rate, 4),
        "refunded_by_merchant": format_major(o.refunded_minor["merchant"], cur),
        "refunded_by_platform": format_major(o.refunded_minor["platform"], cur),
        "refunded_total": format_major(o.refunded_total_minor, cur),
        "abusive_requests": o.abusive_requests,
        "abuse_loss": None if o.abuse_loss_minor is None else format_major(o.abuse_loss_minor, cur),
    }
