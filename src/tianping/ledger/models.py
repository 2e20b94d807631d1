"""Ledger tables: transfers and their entries, append-only.

A stored row is never updated or deleted; a correction is a new ``reversal`` transfer. The
ORM refuses updates and deletes of these rows (see :func:`_refuse_changes`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    event,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from tianping.store import Base
from tianping.store.types import UTCDateTime


class LedgerTransfer(Base):
    """One balanced movement of money; ``id`` is its idempotency key."""

    __tablename__ = "ledger_transfers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    order_id: Mapped[str | None] = mapped_column(String(100), index=True)
    reverses_id: Mapped[str | None] = mapped_column(ForeignKey("ledger_transfers.id"), unique=True)
    memo: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    entries: Mapped[list[LedgerEntry]] = relationship(
        back_populates="transfer", order_by="LedgerEntry.id", lazy="selectin"
    )


class LedgerEntry(Base):
    """One leg of a transfer: signed minor units into (+) or out of (−) an account."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount_minor <> 0", name="nonzero"),
        Index("ix_ledger_entries_account", "account_kind", "account_owner"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("ledger_transfers.id"), index=True)
    account_kind: Mapped[str] = mapped_column(String(40))
    account_owner: Mapped[str] = mapped_column(String(100))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))

    transfer: Mapped[LedgerTransfer] = relationship(back_populates="entries")


@event.listens_for(Session, "before_flush")
def _refuse_changes(session: Session, _context, _instances) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, LedgerTransfer | LedgerEntry) and (
            obj in session.deleted or session.is_modified(obj, include_collections=False)
        ):
            raise RuntimeError("the ledger is append-only: post a reversal instead")
