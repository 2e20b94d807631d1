"""Bodies of the red-packet API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from tianping.inputs import Currency, Id, Instant, Money, PositiveMoney


class CouponIssueIn(BaseModel):
    """A packet the platform gives a buyer; it must expire after it is issued."""

    model_config = ConfigDict(extra="forbid")

    coupon_id: Id
    buyer_id: Id
    amount_minor: PositiveMoney
    currency: Currency
    expires_at: Instant
    min_spend_minor: Money = 0


class CouponOut(BaseModel):
    """A red packet as the API shows it: amounts in minor units, instants in UTC, and what replaced what."""

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
