"""Red packets and their redemptions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tianping.store import Base
from tianping.store.types import UTCDateTime

AVAILABLE = "available"
REDEEMED = "redeemed"
REPLACED = "replaced"
LAPSED = "lapsed"
EXPIRED = "expired"


class Coupon(Base):
    """A red packet held by a buyer. ``replaces_coupon_id`` is unique: one replacement per packet."""

    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="positive"),
        CheckConstraint("min_spend_minor >= 0", name="min_spend"),
    )

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(100), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    min_spend_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), default=AVAILABLE)
    order_id: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(20), default="issued")
    replaces_coupon_id: Mapped[str | None] = mapped_column(ForeignKey("coupons.id"), unique=True)


class CouponRedemption(Base):
    """A packet spent on an order, and what became of it when the order was refunded in full."""

    __tablename__ = "coupon_redemptions"
    __table_args__ = (UniqueConstraint("coupon_id", "order_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    coupon_id: Mapped[str] = mapped_column(ForeignKey("coupons.id"), index=True)
    order_id: Mapped[str] = mapped_column(String(100), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(20))
    refund_id: Mapped[str | None] = mapped_column(String(100))
