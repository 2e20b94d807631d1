"""Every query the ledger makes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, bindparam, case, func, insert, select, text
from sqlalchemy.orm import Session

from tianping.ledger import postings as P
from tianping.ledger.models import LedgerEntry, LedgerTransfer


def get_transfer(session: Session, transfer_id: str) -> LedgerTransfer | None:
    """The transfer ``transfer_id``, or None."""
    return session.get(LedgerTransfer, transfer_id)


_TRANSFER_EXISTS = select(LedgerTransfer.id).where(LedgerTransfer.id == bindparam("id"))
_INSERT_TRANSFER = insert(LedgerTransfer.__table__)
_INSERT_ENTRY = insert(LedgerEntry.__table__)


def transfer_exists(session: Session, transfer_id: str) -> bool:
    """Whether a transfer with this id was posted (postings are idempotent by id)."""
    return session.execute(_TRANSFER_EXISTS, {"id": transfer_id}).first() is not None


def insert_transfer(session: Session, draft: P.TransferDraft, now: datetime) -> None:
    """Append a transfer and its entries (two Core INSERTs, no ORM bookkeeping)."""
    conn = session.connection()
    conn.execute(
        _INSERT_TRANSFER,
        [
            {
                "id": draft.transfer_id,
                "kind": draft.kind,
                "currency": draft.currency,
                "order_id": draft.order_id,
                "reverses_id": draft.reverses,
                "memo": draft.memo,
                "created_at": now,
            }
        ],
    )
    conn.execute(
        _INSERT_ENTRY,
        [
            {
                "transfer_id": draft.transfer_id,
                "account_kind": p.kind,
                "account_owner": p.owner,
                "amount_minor": p.amount_minor,
                "currency": draft.currency,
            }
            for p in draft.postings
        ],
    )


def postings_of(session: Session, transfer_id: str) -> list[P.Posting]:
    """A transfer's postings, in the order they were written."""
    rows = session.execute(
        select(LedgerEntry.account_kind, LedgerEntry.account_owner, LedgerEntry.amount_minor)
        .where(LedgerEntry.transfer_id == transfer_id)
        .order_by(LedgerEntry.id)
    )
    return [P.Posting(k, o, a) for k, o, a in rows]


_BALANCE = select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
    LedgerEntry.account_kind == bindparam("kind"), LedgerEntry.account_owner == bindparam("owner")
)


def balance(session: Session, kind: str, owner: str) -> int:
    """An account's balance in minor units: the sum of its signed entries (negative: more went out than came in)."""
    return int(session.execute(_BALANCE, {"kind": kind, "owner": owner}).scalar_one())


def order_cash(session: Session, order_id: str) -> tuple[int, int]:
    """``(paid, refunded)`` cash of an order, from its buyer-payment legs."""
    paid = case((LedgerTransfer.kind == P.ORDER_PAYMENT, -LedgerEntry.amount_minor), else_=0)
    refunded = case((LedgerTransfer.kind != P.ORDER_PAYMENT, LedgerEntry.amount_minor), else_=0)
    stmt = (
        select(func.coalesce(func.sum(paid), 0), func.coalesce(func.sum(refunded), 0))
        .join(LedgerTransfer, LedgerEntry.transfer_id == LedgerTransfer.id)
        .where(LedgerTransfer.order_id == order_id, LedgerEntry.account_kind == P.BUYER_PAYMENT)
    )
    p, r = session.execute(stmt).one()
    return int(p), int(r)


def entries_of_order(
    session: Session, order_id: str, *, limit: int, offset: int
) -> tuple[Sequence, int]:
    """A page of an order's ledger entries with their transfer's kind and time, and the total count."""
    base = (
        select(LedgerEntry, LedgerTransfer.kind, LedgerTransfer.created_at)
        .join(LedgerTransfer, LedgerEntry.transfer_id == LedgerTransfer.id)
        .where(LedgerTransfer.order_id == order_id)
    )
    total = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = session.execute(base.order_by(LedgerEntry.id).limit(limit).offset(offset)).all()
    return rows, int(total)


def count_transfers(session: Session) -> int:
    """How many transfers the ledger holds."""
    return int(session.execute(select(func.count()).select_from(LedgerTransfer)).scalar_one())


def count_entries(session: Session) -> int:
    """How many entries the ledger holds."""
    return int(session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one())


# -- audit queries -------------------------------------------------------------------------


def unbalanced_transfers(session: Session) -> list[tuple[str, int]]:
    """Transfers whose entries do not sum to zero, with the sum (an audit finds none)."""
    stmt = (
        select(LedgerEntry.transfer_id, func.sum(LedgerEntry.amount_minor))
        .group_by(LedgerEntry.transfer_id)
        .having(func.sum(LedgerEntry.amount_minor) != 0)
    )
    return [(t, int(s)) for t, s in session.execute(stmt)]


def empty_transfers(session: Session) -> list[str]:
    """Transfers without any entry (an audit finds none)."""
    stmt = (
        select(LedgerTransfer.id)
        .outerjoin(LedgerEntry, LedgerEntry.transfer_id == LedgerTransfer.id)
        .where(LedgerEntry.id.is_(None))
    )
    return list(session.execute(stmt).scalars())


def mixed_currency_transfers(session: Session) -> list[str]:
    """Transfers with an entry in another currency than the transfer's (an audit finds none)."""
    stmt = (
        select(LedgerTransfer.id)
        .join(LedgerEntry, LedgerEntry.transfer_id == LedgerTransfer.id)
        .where(LedgerEntry.currency != LedgerTransfer.currency)
        .distinct()
    )
    return list(session.execute(stmt).scalars())


def negative_accounts(session: Session, kinds: Sequence[str]) -> list[tuple[str, str, int]]:
    """Accounts of ``kinds`` whose balance is below zero: ``(kind, owner, balance)``."""
    total = func.sum(LedgerEntry.amount_minor)
    stmt = (
        select(LedgerEntry.account_kind, LedgerEntry.account_owner, total)
        .where(LedgerEntry.account_kind.in_(kinds))
        .group_by(LedgerEntry.account_kind, LedgerEntry.account_owner)
        .having(total < 0)
    )
    return [(k, o, int(s)) for k, o, s in session.execute(stmt)]


def cash_by_order(session: Session) -> list[tuple[str, int, int]]:
    """``(order_id, paid, refunded)`` for every order the ledger knows."""
    is_payment = LedgerTransfer.kind == P.ORDER_PAYMENT
    paid = func.sum(case((is_payment, -LedgerEntry.amount_minor), else_=0))
    refunded = func.sum(case((is_payment, 0), else_=LedgerEntry.amount_minor))
    stmt = (
        select(LedgerTransfer.order_id, paid, refunded)
        .join(LedgerEntry, LedgerEntry.transfer_id == LedgerTransfer.id)
        .where(LedgerTransfer.order_id.is_not(None), LedgerEntry.account_kind == P.BUYER_PAYMENT)
        .group_by(LedgerTransfer.order_id)
    )
    return [(o, int(p), int(r)) for o, p, r in session.execute(stmt)]


def packet_cash_transfers(session: Session) -> list[str]:
    """Transfers that pay a buyer cash out of a red packet (an audit finds none: a packet goes back as a packet, never as cash)."""
    out_packets = select(LedgerEntry.transfer_id).where(
        and_(LedgerEntry.account_kind == P.BUYER_REDPACKETS, LedgerEntry.amount_minor < 0)
    )
    stmt = (
        select(LedgerEntry.transfer_id)
        .where(
            LedgerEntry.account_kind == P.BUYER_PAYMENT,
            LedgerEntry.amount_minor > 0,
            LedgerEntry.transfer_id.in_(out_packets),
        )
        .distinct()
    )
    return list(session.execute(stmt).scalars())


# -- the protection fund ---------------------------------------------------------------------

#: Arbitrary constant naming the PostgreSQL advisory locks of the protection funds (one per
#: currency: the second key is the currency's hash).
FUND_LOCK = 0x7470_6675


def lock_fund(session: Session, currency: str) -> None:
    """Hold the ``currency`` fund until the transaction ends, so two payouts never both read
    the same balance. SQLite writers already hold the database lock (``BEGIN IMMEDIATE``)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:k, hashtext(:c))"), {"k": FUND_LOCK, "c": currency}
        )


def fund_balances(session: Session) -> dict[str, int]:
    """Each currency's protection-fund balance, in minor units."""
    stmt = (
        select(LedgerEntry.account_owner, func.sum(LedgerEntry.amount_minor))
        .where(LedgerEntry.account_kind == P.PROTECTION_FUND)
        .group_by(LedgerEntry.account_owner)
        .order_by(LedgerEntry.account_owner)
    )
    return {c: int(s) for c, s in session.execute(stmt)}


def fund_movements(session: Session, *, limit: int) -> tuple[Sequence, int]:
    """The fund's latest movements (newest first): ``(transfer id, kind, currency, signed
    amount, time, memo, order id)``, and how many there are."""
    base = (
        select(
            LedgerTransfer.id,
            LedgerTransfer.kind,
            LedgerEntry.account_owner,
            LedgerEntry.amount_minor,
            LedgerTransfer.created_at,
            LedgerTransfer.memo,
            LedgerTransfer.order_id,
        )
        .join(LedgerTransfer, LedgerEntry.transfer_id == LedgerTransfer.id)
        .where(LedgerEntry.account_kind == P.PROTECTION_FUND)
    )
    total = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = session.execute(base.order_by(LedgerEntry.id.desc()).limit(limit)).all()
    return rows, int(total)


def fund_dips(session: Session) -> list[tuple[str, str, int]]:
    """Entries after which a fund's running balance was below zero: ``(currency, transfer id,
    balance then)`` — the fund must never have been negative, not only be positive now."""
    running = (
        func.sum(LedgerEntry.amount_minor)
        .over(partition_by=LedgerEntry.account_owner, order_by=LedgerEntry.id)
        .label("running")
    )
    inner = (
        select(LedgerEntry.account_owner, LedgerEntry.transfer_id, running)
        .where(LedgerEntry.account_kind == P.PROTECTION_FUND)
        .subquery()
    )
    stmt = select(inner.c.account_owner, inner.c.transfer_id, inner.c.running).where(
        inner.c.running < 0
    )
    return [(c, t, int(r)) for c, t, r in session.execute(stmt)]


def fund_payouts(session: Session) -> dict[str, int]:
    """The fund's payouts by transfer id: the amount each paid out (positive)."""
    stmt = (
        select(LedgerEntry.transfer_id, -func.sum(LedgerEntry.amount_minor))
        .join(LedgerTransfer, LedgerEntry.transfer_id == LedgerTransfer.id)
        .where(LedgerTransfer.kind == P.FUND_PAYOUT, LedgerEntry.account_kind == P.PROTECTION_FUND)
        .group_by(LedgerEntry.transfer_id)
    )
    return {t: int(a) for t, a in session.execute(stmt)}


def fund_totals(session: Session) -> list[tuple[str, str, int, int]]:
    """``(currency, transfer kind, movements, signed sum into the fund)`` per currency and kind."""
    stmt = (
        select(
            LedgerEntry.account_owner,
            LedgerTransfer.kind,
            func.count(),
            func.sum(LedgerEntry.amount_minor),
        )
        .join(LedgerTransfer, LedgerEntry.transfer_id == LedgerTransfer.id)
        .where(LedgerEntry.account_kind == P.PROTECTION_FUND)
        .group_by(LedgerEntry.account_owner, LedgerTransfer.kind)
    )
    return [(c, k, int(n), int(a)) for c, k, n, a in session.execute(stmt)]
