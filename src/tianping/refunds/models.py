"""Orders as the marketplace reports them, refund requests, their events, decisions and timers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tianping.store import Base
from tianping.store.types import UTCDateTime


class Order(Base):
    """A paid order. ``amount_minor`` is the cash paid; a red packet paid ``coupon_minor`` more.

    ``refunded_minor`` (paid back) and ``reserved_minor`` (held by open requests) change only
    under the order's row lock, and the database refuses any row where they exceed the cash paid.
    """

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("amount_minor >= 0", name="amount"),
        CheckConstraint("refunded_minor >= 0 AND reserved_minor >= 0", name="nonnegative"),
        CheckConstraint(
            "refunded_minor + reserved_minor <= amount_minor", name="not_over_refunded"
        ),
    )

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(100), index=True)
    merchant_id: Mapped[str] = mapped_column(String(100), index=True)
    product_id: Mapped[str] = mapped_column(String(100), index=True)
    category: Mapped[str] = mapped_column(String(100))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    coupon_id: Mapped[str | None] = mapped_column(String(100))
    coupon_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # who placed the order beyond the account (abuse-ring features); None: unknown
    device_id: Mapped[str | None] = mapped_column(String(100))
    address_hash: Mapped[str | None] = mapped_column(String(100))
    payment_fingerprint: Mapped[str | None] = mapped_column(String(100))


class RefundRequest(Base):
    """A buyer's request for money back on an order, and where it stands."""

    __tablename__ = "refund_requests"
    __table_args__ = (
        CheckConstraint("requested_amount_minor > 0", name="requested"),
        CheckConstraint("refunded_minor >= 0", name="refunded"),
        Index("ix_refund_requests_status_created", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    buyer_id: Mapped[str] = mapped_column(String(100), index=True)
    merchant_id: Mapped[str] = mapped_column(String(100), index=True)
    reason: Mapped[str] = mapped_column(String(100))
    requested_amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    evidence_urls: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(30))
    decision_id: Mapped[int | None] = mapped_column(Integer)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    payer: Mapped[str | None] = mapped_column(String(20))
    returned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seq: Mapped[int] = mapped_column(Integer, default=0)


class RefundEvent(Base):
    """One transition of a request, appended and never changed."""

    __tablename__ = "refund_events"
    __table_args__ = (UniqueConstraint("refund_id", "seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    refund_id: Mapped[str] = mapped_column(ForeignKey("refund_requests.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(30))
    to_status: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RefundDecision(Base):
    """A decision on a request: by the policy (with its inputs and version), a timer or a person."""

    __tablename__ = "refund_decisions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    refund_id: Mapped[str] = mapped_column(ForeignKey("refund_requests.id"), index=True)
    source: Mapped[str] = mapped_column(String(20))  # policy | sla | merchant | reviewer
    policy_name: Mapped[str | None] = mapped_column(String(100))
    policy_version: Mapped[str | None] = mapped_column(String(80), index=True)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    action: Mapped[str] = mapped_column(String(40))
    refund_amount_minor: Mapped[int] = mapped_column(BigInteger)
    requires_return: Mapped[bool] = mapped_column(Boolean)
    payer: Mapped[str] = mapped_column(String(20))
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    rule_id: Mapped[str | None] = mapped_column(String(100))
    decided_by: Mapped[str] = mapped_column(String(100))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RefundTimer(Base):
    """An SLA deadline; it fires at most once (``pending`` → ``fired`` in one conditional UPDATE)."""

    __tablename__ = "refund_timers"
    __table_args__ = (
        UniqueConstraint("refund_id", "kind"),
        Index("ix_refund_timers_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    refund_id: Mapped[str] = mapped_column(ForeignKey("refund_requests.id"))
    kind: Mapped[str] = mapped_column(String(30))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(20), default="pending")
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StoredPolicy(Base):
    """A refund policy's content, kept by version so old decisions can be replayed."""

    __tablename__ = "refund_policies"

    version: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PolicyActivation(Base):
    """Which policy decides new requests; the latest row wins, earlier rows are the history."""

    __tablename__ = "refund_policy_activations"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(ForeignKey("refund_policies.version"))
    activated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    activated_by: Mapped[str] = mapped_column(String(100))
