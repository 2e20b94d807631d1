"""Orders as the refund lifecycle knows them: recorded once (with the red packet spent on them),
delivered later, and their ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tianping.audit import log as audit_log
from tianping.clock import ensure_utc
from tianping.coupons import service as coupons
from tianping.errors import Conflict, InvalidInput, NotFound
from tianping.inputs import instant as checked_instant
from tianping.ledger import postings as P
from tianping.ledger import service as ledger
from tianping.money import exponent_of
from tianping.refunds import repository as repo
from tianping.refunds.env import Env
from tianping.refunds.models import Order
from tianping.refunds.schemas import (
    OrderIn,
)

# -- orders ----------------------------------------------------------------------------------


def record_order(data: OrderIn, *, session: Session, env: Env) -> tuple[Order, bool]:
    """Record a paid order: its cash into escrow, and its red packet redeemed.

    Returns:
        The order and whether it was new. A repeated report is accepted again, and may add
        the delivery time the first report did not have.

    Raises:
        Conflict: the order id was recorded with different details, or the packet cannot be
            spent (another buyer's, already spent).
        InvalidInput: unknown currency, delivery before payment, packet rules broken.
    """
    now = env.clock.now()
    exponent_of(data.currency)
    paid_at = checked_instant(data.paid_at, field="paid_at", now=now)
    delivered_at = None
    if data.delivered_at is not None:
        delivered_at = checked_instant(data.delivered_at, field="delivered_at", now=now)
    if delivered_at is not None and delivered_at < paid_at:
        raise InvalidInput(
            "delivered_at is before paid_at", field="delivered_at", code="before_payment"
        )
    existing = repo.get_order(session, data.order_id, lock=True)
    if existing is not None:
        _same_order(existing, data)
        if _note_delivery(existing, delivered_at):
            audit_log.later("order.delivered", subject=f"order:{existing.id}", now=now,
                            detail={"delivered_at": delivered_at}, session=session)  # fmt: skip
        return existing, False
    order = Order(
        id=data.order_id,
        buyer_id=data.buyer_id,
        merchant_id=data.merchant_id,
        product_id=data.product_id,
        category=data.category,
        amount_minor=data.amount_minor,
        currency=data.currency,
        coupon_id=data.coupon.coupon_id if data.coupon else None,
        coupon_minor=data.coupon.amount_minor if data.coupon else 0,
        paid_at=paid_at,
        delivered_at=delivered_at,
        recorded_at=now,
        refunded_minor=0,
        reserved_minor=0,
        device_id=data.device_id,
        address_hash=data.address_hash,
        payment_fingerprint=data.payment_fingerprint,
    )
    session.add(order)
    session.flush()
    if data.amount_minor > 0:
        draft = P.order_payment(order.id, order.buyer_id, order.amount_minor, order.currency)
        ledger.post(draft, session=session, now=now)
    if data.coupon is not None:
        spec = coupons.Redemption(
            data.coupon.coupon_id,
            data.coupon.amount_minor,
            ensure_utc(data.coupon.expires_at),
            data.coupon.min_spend_minor,
        )
        coupons.redeem(
            spec,
            order_id=order.id,
            buyer_id=order.buyer_id,
            cash_minor=order.amount_minor,
            currency=order.currency,
            paid_at=paid_at,
            session=session,
            now=now,
        )
    detail = {"buyer_id": order.buyer_id, "merchant_id": order.merchant_id,
              "product_id": order.product_id, "category": order.category,
              "amount_minor": order.amount_minor, "currency": order.currency,
              "coupon_id": order.coupon_id, "coupon_minor": order.coupon_minor,
              "paid_at": paid_at, "delivered_at": delivered_at, "device_id": order.device_id,
              "address_hash": order.address_hash,
              "payment_fingerprint": order.payment_fingerprint}  # fmt: skip
    audit_log.later("order.recorded", subject=f"order:{order.id}", now=now, detail=detail,
                    session=session)  # fmt: skip
    return order, True


def _note_delivery(order: Order, delivered_at: datetime | None) -> bool:
    """A later report of the same order may add its delivery; it may not change it.

    Returns whether it added it."""
    if delivered_at is None or delivered_at == order.delivered_at:
        return False
    if order.delivered_at is not None:
        raise Conflict(
            f"order {order.id} was already reported delivered at {order.delivered_at.isoformat()}",
            field="delivered_at",
        )
    order.delivered_at = delivered_at
    return True


def _same_order(order: Order, data: OrderIn) -> None:
    theirs = (
        data.buyer_id,
        data.merchant_id,
        data.product_id,
        data.category,
        data.amount_minor,
        data.currency,
        data.coupon.coupon_id if data.coupon else None,
        ensure_utc(data.paid_at),
    )
    ours = (
        order.buyer_id,
        order.merchant_id,
        order.product_id,
        order.category,
        order.amount_minor,
        order.currency,
        order.coupon_id,
        order.paid_at,
    )
    if theirs != ours:
        raise Conflict(
            f"order {order.id} was already recorded with different details", field="order_id"
        )


def get_order_or_raise(order_id: str, *, session: Session, lock: bool = False) -> Order:
    """The order ``order_id`` (``lock``: under its row lock); :class:`NotFound` when there is none."""
    order = repo.get_order(session, order_id, lock=lock)
    if order is None:
        raise NotFound(f"unknown order {order_id!r}", field="order_id")
    return order


def order_ledger(order_id: str, *, session: Session, limit: int, offset: int) -> dict[str, Any]:
    """An order's ledger entries (a page) and its cash totals."""
    order = get_order_or_raise(order_id, session=session)
    cash = ledger.order_cash(order_id, session=session)
    rows, total = ledger.order_entries(order_id, session=session, limit=limit, offset=offset)
    entries = [
        {
            "transfer_id": e.transfer_id,
            "kind": kind,
            "account": f"{e.account_kind}:{e.account_owner}",
            "amount_minor": e.amount_minor,
            "currency": e.currency,
            "created_at": created_at,
        }
        for e, kind, created_at in rows
    ]
    totals = {
        "paid_minor": cash.paid_minor,
        "refunded_minor": cash.refunded_minor,
        "refundable_minor": cash.refundable_minor - order.reserved_minor,
        "coupon_minor": order.coupon_minor,
        "currency": order.currency,
    }
    return {
        "order_id": order_id,
        "totals": totals,
        "entries": entries,
        "total_entries": total,
        "limit": limit,
        "offset": offset,
    }
