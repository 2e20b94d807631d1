"""The few store reads only the dashboard needs (lists the API does not offer)."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tianping.governance.models import DecisionEvidence
from tianping.refunds.models import (
    Order,
    PolicyActivation,
    RefundDecision,
    RefundRequest,
    StoredPolicy,
)


def merchants(session: Session, *, limit: int, offset: int) -> tuple[list[str], int]:
    """Merchant ids with orders, by name, a page of them, and how many there are."""
    ids = select(Order.merchant_id).distinct()
    total = session.scalar(select(func.count()).select_from(ids.subquery())) or 0
    page = session.scalars(ids.order_by(Order.merchant_id).limit(limit).offset(offset)).all()
    return list(page), total


def merchant_refunds(
    session: Session, merchant_id: str, *, limit: int, offset: int
) -> tuple[list[dict], int]:
    """A merchant's refund requests (plain dicts), newest first, and how many there are."""
    where = RefundRequest.merchant_id == merchant_id
    total = session.scalar(select(func.count()).select_from(RefundRequest).where(where)) or 0
    rows = session.scalars(
        select(RefundRequest).where(where).order_by(RefundRequest.created_at.desc(),
                                                    RefundRequest.id).limit(limit).offset(offset)
    ).all()  # fmt: skip
    return [{c: getattr(r, c) for c in _REFUND_COLUMNS} for r in rows], total


_REFUND_COLUMNS = ("id", "order_id", "reason", "requested_amount_minor", "refunded_minor", "status")


def refund_rates_by_reason(session: Session) -> list[dict]:
    """Refund requests per reason: count, requested and refunded amounts (minor units)."""
    rows = session.execute(
        select(RefundRequest.reason, func.count(), func.sum(RefundRequest.requested_amount_minor),
               func.sum(RefundRequest.refunded_minor))
        .group_by(RefundRequest.reason).order_by(func.count().desc())
    ).all()  # fmt: skip
    return [
        {
            "reason": r,
            "requests": n,
            "requested_minor": int(req or 0),
            "refunded_minor": int(paid or 0),
        }
        for r, n, req, paid in rows
    ]


def policy_history(session: Session, *, limit: int = 20) -> list[dict]:
    """Policy activations, newest first (the first row decides new requests)."""
    rows = session.execute(
        select(PolicyActivation.version, StoredPolicy.name, PolicyActivation.activated_at,
               PolicyActivation.activated_by)
        .join(StoredPolicy, StoredPolicy.version == PolicyActivation.version)
        .order_by(PolicyActivation.activated_at.desc(), PolicyActivation.id.desc()).limit(limit)
    ).all()  # fmt: skip
    return [{"version": v, "name": n, "activated_at": at, "by": by} for v, n, at, by in rows]


#: The reason code a policy gives when it rejects a request for abnormal refund behaviour.
ABUSE_CODE = "abnormal_behaviour"


def rates_by_category(session: Session) -> list[dict]:
    """Per order category: orders, refunded orders, refund requests and abusive requests.

    ``refund_rate`` is refunded orders (any money back) over orders; ``abuse_rate`` is requests
    rejected with the reason ``abnormal_behaviour`` over refund requests (None without any).
    """
    by_category = select(Order.category, func.count()).group_by(Order.category)
    orders = dict(session.execute(by_category).all())
    refunded = dict(session.execute(select(Order.category, func.count())
                                    .where(Order.refunded_minor > 0).group_by(Order.category)).all())  # fmt: skip
    requests = dict(session.execute(
        select(Order.category, func.count()).join(RefundRequest, RefundRequest.order_id == Order.id)
        .group_by(Order.category)).all())  # fmt: skip
    abusive: dict[str, set[str]] = {}
    rejected = session.execute(
        select(Order.category, RefundDecision.refund_id, RefundDecision.reasons)
        .join(RefundRequest, RefundRequest.id == RefundDecision.refund_id)
        .join(Order, Order.id == RefundRequest.order_id).where(RefundDecision.action == "reject")
    ).all()  # fmt: skip
    for category, refund_id, reasons in rejected:
        if any(isinstance(r, dict) and r.get("code") == ABUSE_CODE for r in reasons or []):
            abusive.setdefault(category, set()).add(refund_id)
    rows = []
    for category in sorted(orders):
        n, asked, bad = orders[category], requests.get(category, 0), len(abusive.get(category, ()))
        rows.append({"category": category, "orders": n, "refunded_orders": refunded.get(category, 0),
                     "refund_rate": refunded.get(category, 0) / n, "requests": asked,
                     "abusive": bad, "abuse_rate": bad / asked if asked else None})  # fmt: skip
    return rows


def latest_replay(session: Session) -> dict | None:
    """The newest policy replay kept in the store (frozen as a decision's evidence), if any."""
    row = session.scalars(
        select(DecisionEvidence).where(DecisionEvidence.kind == "policy-replay")
        .order_by(DecisionEvidence.captured_at.desc(), DecisionEvidence.id.desc()).limit(1)
    ).first()  # fmt: skip
    if row is None:
        return None
    content = json.loads(row.content)
    return {"decision_id": row.decision_id, "ref": row.ref, "sha256": row.sha256,
            "captured_at": row.captured_at, "policy": content.get("policy"),
            "version": content.get("version"),
            "sections": _report_order(content.get("sections") or {})}  # fmt: skip


#: The replay report's sections and leading columns in the order the CLI prints them (the
#: frozen copy is canonical JSON, whose keys are sorted).
_SECTIONS = ("window", "outcome", "two-sided errors", "decisions by action", "comparison",
             "changes by action", "sample of changed decisions")  # fmt: skip
_LEADING = ("policy", "action", "arm", "from", "refund_id", "note")


def _report_order(sections: dict) -> dict:
    ranked = sorted(sections, key=lambda t: (t == "notes", _SECTIONS.index(t) if t in _SECTIONS
                                             else len(_SECTIONS), t))  # fmt: skip
    out = {}
    for title in ranked:
        rows = sections[title]
        out[title] = [
            {k: r[k] for k in sorted(r, key=lambda k: (k not in _LEADING, _rank(k)))} for r in rows
        ]
    return out


def _rank(key: str) -> int:
    return _LEADING.index(key) if key in _LEADING else len(_LEADING)
