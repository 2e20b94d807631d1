"""The few store reads only the dashboard needs (lists the API does not offer)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tianping.refunds.models import Order, PolicyActivation, RefundRequest, StoredPolicy


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
