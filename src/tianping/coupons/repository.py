"""Every query on red packets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from tianping.coupons.models import AVAILABLE, Coupon, CouponRedemption


def get(session: Session, coupon_id: str, *, lock: bool = False) -> Coupon | None:
    """The packet ``coupon_id`` re-read from the store (``lock``: under a row lock), or None."""
    stmt = select(Coupon).where(Coupon.id == coupon_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()


_REDEMPTION = select(CouponRedemption).where(CouponRedemption.order_id == bindparam("order"))


def redemption_of(session: Session, order_id: str) -> CouponRedemption | None:
    """The redemption of a packet on ``order_id``, or None when the order used none."""
    return session.execute(_REDEMPTION, {"order": order_id}).scalar_one_or_none()


def mark_returned(
    session: Session, redemption_id: int, *, now: datetime, outcome: str, refund_id: str
) -> bool:
    """Record a packet's return once: False when it was already returned."""
    stmt = (
        update(CouponRedemption)
        .where(CouponRedemption.id == redemption_id, CouponRedemption.returned_at.is_(None))
        .values(returned_at=now, outcome=outcome, refund_id=refund_id)
    )
    return session.execute(stmt).rowcount == 1


def replacement_of(session: Session, coupon_id: str) -> Coupon | None:
    """The packet issued to replace ``coupon_id`` (at most one exists), or None."""
    stmt = select(Coupon).where(Coupon.replaces_coupon_id == coupon_id)
    return session.execute(stmt).scalar_one_or_none()


def due_expiries(session: Session, now: datetime, limit: int) -> list[Coupon]:
    """Up to ``limit`` unspent packets expired by ``now``, oldest first, locked and skipping rows another expiry run holds."""
    stmt = (
        select(Coupon)
        .where(Coupon.status == AVAILABLE, Coupon.expires_at <= now)
        .order_by(Coupon.expires_at, Coupon.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.execute(stmt).scalars())


def of_buyer(session: Session, buyer_id: str, *, limit: int, offset: int) -> list[Coupon]:
    """A page of a buyer's packets, oldest first."""
    stmt = (
        select(Coupon)
        .where(Coupon.buyer_id == buyer_id)
        .order_by(Coupon.issued_at, Coupon.id)
        .limit(limit)
        .offset(offset)
    )
    return list(session.execute(stmt).scalars())
