"""Request and response bodies of the refund API (Pydantic)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tianping.inputs import (
    Currency,
    Id,
    Instant,
    Money,
    PositiveMoney,
    ShortText,
    Text,
)
from tianping.refunds.evidence import MAX_EVIDENCE, EvidenceIn

#: Request bodies refuse fields they do not define (a misspelt field is an error, not ignored).
STRICT = ConfigDict(extra="forbid")


class CouponIn(BaseModel):
    """A red packet spent on the order."""

    model_config = STRICT

    coupon_id: Id
    amount_minor: PositiveMoney
    expires_at: Instant
    min_spend_minor: Money | None = Field(
        None,
        description="spend threshold on the order value; taken from the issued packet if known",
    )


class OrderIn(BaseModel):
    """An order as the marketplace reports it. ``amount_minor`` is the cash the buyer paid;
    it may be 0 only when a red packet paid for the whole order."""

    model_config = ConfigDict(
        extra="forbid",
        # The rule below, for the OpenAPI document: cash >= 1, or a red packet paid it all.
        json_schema_extra={
            "anyOf": [
                {"properties": {"amount_minor": {"minimum": 1}}},
                {"required": ["coupon"], "properties": {"coupon": {"type": "object"}}},
            ]
        },
    )

    order_id: Id
    buyer_id: Id
    merchant_id: Id
    product_id: Id
    category: Id
    amount_minor: Money
    currency: Currency
    coupon: CouponIn | None = None
    paid_at: Instant
    delivered_at: Instant | None = None
    device_id: Id | None = Field(None, description="device the order was placed from")
    address_hash: Id | None = Field(None, description="hash of the shipping address")
    payment_fingerprint: Id | None = Field(None, description="payment-method fingerprint")

    @model_validator(mode="after")
    def _something_was_paid(self) -> OrderIn:
        if self.amount_minor == 0 and self.coupon is None:
            raise ValueError("amount_minor: an order without a red packet must cost at least 1")
        return self


class OrderOut(BaseModel):
    """An order as the API shows it: amounts in minor units, instants in UTC."""

    order_id: str
    buyer_id: str
    merchant_id: str
    product_id: str
    category: str
    amount_minor: int
    currency: str
    coupon_id: str | None
    coupon_minor: int
    paid_at: datetime
    delivered_at: datetime | None
    refunded_minor: int
    reserved_minor: int
    device_id: str | None = None
    address_hash: str | None = None
    payment_fingerprint: str | None = None


class RefundRequestIn(BaseModel):
    """A buyer's refund request."""

    model_config = STRICT

    order_id: Id
    reason: Id
    requested_amount_minor: PositiveMoney
    evidence_urls: list[Text] = Field(default_factory=list, max_length=20)
    evidence: list[EvidenceIn] = Field(default_factory=list, max_length=MAX_EVIDENCE)


class ReasonOut(BaseModel):
    """One reason a decision gives, in the words shown to the buyer and to the merchant."""

    code: str
    buyer: str = ""
    merchant: str = ""


class DecisionOut(BaseModel):
    """A decision on a request: action, amount (minor units), whether a return is needed, who pays, why, and who decided."""

    action: str
    refund_amount_minor: int
    requires_return: bool
    payer: str | None
    reasons: list[ReasonOut]
    policy_version: str | None
    policy_name: str | None = None
    rule_id: str | None = None
    source: str
    decided_by: str
    decided_at: datetime


class EventOut(BaseModel):
    """One step of a request's history: the event, the status it moved from and to, who acted and when."""

    seq: int
    event: str
    from_status: str | None
    to_status: str
    actor: str
    at: datetime
    data: dict[str, Any]


class TimerOut(BaseModel):
    """An SLA timer of a request: what fires, when, and whether it is pending, fired or closed."""

    kind: str
    due_at: datetime
    state: str


class RefundOut(BaseModel):
    """A refund request with its decision, events and timers (``GET /v1/refund-requests/{id}``)."""

    id: str
    order_id: str
    buyer_id: str
    merchant_id: str
    status: str
    reason: str
    requested_amount_minor: int
    refunded_amount_minor: int
    currency: str
    payer: str | None
    returned: bool
    evidence_urls: list[str]
    created_at: datetime
    updated_at: datetime
    decision: DecisionOut | None
    events: list[EventOut]
    timers: list[TimerOut]


class AppealIn(BaseModel):
    """The merchant contests a refund within the appeal window."""

    model_config = STRICT

    reason: Id = "merchant_appeal"
    note: Text = ""
    evidence_urls: list[Text] = Field(default_factory=list, max_length=20)
    evidence: list[EvidenceIn] = Field(default_factory=list, max_length=MAX_EVIDENCE)


class ReturnShippedIn(BaseModel):
    """The buyer shipped the goods back; the tracking number is optional."""

    model_config = STRICT

    tracking_number: ShortText = ""


class ReturnReceivedIn(BaseModel):
    """The merchant received the returned goods; a note is optional."""

    model_config = STRICT

    note: Text = ""


class MerchantResponseIn(BaseModel):
    """The merchant's answer during negotiation: accept (refund) or refuse (manual review)."""

    model_config = STRICT

    accept: Annotated[bool, Field(strict=True)]
    note: Text = ""


class ReviewIn(BaseModel):
    """A reviewer's decision on a queued request.

    On a request in ``manual_review``: ``refund_only``, ``partial_refund``,
    ``return_and_refund`` (with ``refund_amount_minor`` and ``payer``) or ``reject``. On an
    ``appealed`` request: ``uphold_appeal`` (the platform pays instead of the merchant; the
    buyer keeps the refund) or ``dismiss_appeal``. The reviewer is whoever is signed in (the
    API key's holder), never a field of the body.
    """

    model_config = STRICT

    action: Literal[
        "refund_only",
        "partial_refund",
        "return_and_refund",
        "reject",
        "uphold_appeal",
        "dismiss_appeal",
    ]
    refund_amount_minor: Money | None = None
    payer: Literal["merchant", "platform"] | None = None
    note: Text = ""


class LedgerEntryOut(BaseModel):
    """One ledger entry of an order: its transfer, the account and the signed amount in minor units."""

    transfer_id: str
    kind: str
    account: str
    amount_minor: int
    currency: str
    created_at: datetime


class LedgerTotals(BaseModel):
    """An order's cash as the ledger sees it: paid, refunded, still refundable, and the red packet spent on it."""

    paid_minor: int
    refunded_minor: int
    refundable_minor: int
    coupon_minor: int
    currency: str


class OrderLedgerOut(BaseModel):
    """A page of an order's ledger entries with its totals (``GET /v1/orders/{id}/ledger``)."""

    order_id: str
    totals: LedgerTotals
    entries: list[LedgerEntryOut]
    total_entries: int
    limit: int
    offset: int


class ComponentOut(BaseModel):
    """One component of a merchant's quality: its value, orders behind it, sub-score (0–5) and weight."""

    name: str
    value: float | None
    n: float
    sub_score: float | None
    weight: float
    platform: float | None


class MerchantQualityOut(BaseModel):
    """A merchant's quality score (0–5) with its components (``GET /v1/merchants/{id}/quality``)."""

    merchant_id: str
    score: float
    components: list[ComponentOut]


class CreditLineOut(BaseModel):
    """One line of a buyer's scorecard: the input, its band and the points it gives."""

    name: str
    value: float
    band: str
    points: int
    reason: str


class BuyerCreditOut(BaseModel):
    """A buyer's credit score (350–950) with the lines that make it (``GET /v1/buyers/{id}/credit``)."""

    buyer_id: str
    score: int
    lines: list[CreditLineOut]


class FundBalanceOut(BaseModel):
    """One currency's merchant protection fund: what it holds, took in and paid out."""

    currency: str
    balance_minor: int
    balance: str
    top_ups: int
    topped_up_minor: int
    topped_up: str
    payouts: int
    paid_out_minor: int
    paid_out: str


class FundMovementOut(BaseModel):
    """A top-up (an approved spend decision) or a payout (an upheld merchant appeal)."""

    transfer: str
    kind: Literal["top-up", "payout"]
    at: datetime
    currency: str
    amount_minor: int = Field(description="Signed: into the fund (+) or out of it (−).")
    amount: str
    refund_id: str | None
    order_id: str | None
    memo: str


class FundOut(BaseModel):
    """``GET /v1/protection-fund``: balances per currency and the latest movements."""

    funds: list[FundBalanceOut]
    movements: list[FundMovementOut]
    movement_count: int
