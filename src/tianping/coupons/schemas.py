"""Bodies of the red-packet API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from tianping.refunds.schemas import Currency, Id, Money, PositiveMoney


class CouponIssueIn(BaseModel):
    """A packet the platform gives a buyer."""

    coupon_id: Id
    buyer_id: Id
    amount_minor: PositiveMoney
    currency: Currency
    expires_at: datetime
    min_spend_minor: Money = 0


class CouponOut(BaseModel):
    coupon_id: str
    buyer_id: str
    amount_minor: int
    currency: str
    min_spend_minor: int
    issued_at: datetime
    expires_at: datetime
    status: str
    order_id: str | None
    source: str
    replaces_coupon_id: str | None
