"""Posting, reversing and auditing transfers. Never commits: the caller's transaction does."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tianping.errors import Conflict, NotFound
from tianping.ledger import postings as P
from tianping.ledger import repository as repo
from tianping.money import format_major


def post(draft: P.TransferDraft, *, session: Session, now: datetime) -> bool:
    """Append a balanced transfer; posting the same transfer id again is a no-op.

    Returns:
        True when the transfer was written, False when an identical one already existed.

    Raises:
        InvalidInput: the draft is not balanced or not well formed.
        Conflict: a different transfer already has this id, or a restricted account would go
            negative.
    """
    P.validate(draft)
    if repo.transfer_exists(session, draft.transfer_id):
        if Counter(repo.postings_of(session, draft.transfer_id)) != Counter(draft.postings):
            raise Conflict(
                f"transfer {draft.transfer_id} already exists with different postings",
                field="transfer_id",
            )
        return False
    repo.insert_transfer(session, draft, now)
    _check_restricted(session, draft)
    return True


def _check_restricted(session: Session, draft: P.TransferDraft) -> None:
    for p in draft.postings:
        if p.kind in P.RESTRICTED_KINDS and p.amount_minor < 0:
            left = repo.balance(session, p.kind, p.owner)
            if left < 0:
                raise Conflict(
                    f"transfer {draft.transfer_id} would leave {p.kind}:{p.owner} at {left}",
                    field="amount_minor",
                )


def reverse(transfer_id: str, *, session: Session, now: datetime, memo: str = "") -> str:
    """Append the reversal of a stored transfer; returns the reversal's id (idempotent)."""
    original = repo.get_transfer(session, transfer_id)
    if original is None:
        raise NotFound(f"no ledger transfer {transfer_id!r}", field="transfer_id")
    draft = P.TransferDraft(
        original.id,
        original.kind,
        original.currency,
        tuple(repo.postings_of(session, transfer_id)),
        original.order_id,
    )
    rev = P.reversal(draft, memo=memo)
    post(rev, session=session, now=now)
    return rev.transfer_id


@dataclass(frozen=True, slots=True)
class OrderCash:
    """An order's cash as the ledger sees it."""

    paid_minor: int
    refunded_minor: int

    @property
    def refundable_minor(self) -> int:
        """Cash that can still be refunded: paid minus refunded, in minor units."""
        return self.paid_minor - self.refunded_minor


def order_cash(order_id: str, *, session: Session) -> OrderCash:
    """Cash paid for and refunded on an order, from its ledger entries."""
    return OrderCash(*repo.order_cash(session, order_id))


def order_entries(order_id: str, *, session: Session, limit: int, offset: int):
    """A page of an order's entries (oldest first) and how many there are."""
    return repo.entries_of_order(session, order_id, limit=limit, offset=offset)


def check(*, session: Session) -> list[P.Violation]:
    """Audit the whole ledger; an empty list means every rule holds.

    Rules: every transfer has entries that sum to zero in its own currency; no order's
    refunds exceed what was paid or go below zero; no restricted account is negative; no
    transfer pays red-packet value out as cash.
    """
    found = [
        P.Violation("balanced", t, f"entries sum to {s}")
        for t, s in repo.unbalanced_transfers(session)
    ]
    found += [
        P.Violation("balanced", t, "transfer has no entries") for t in repo.empty_transfers(session)
    ]
    found += [
        P.Violation("currency", t, "an entry's currency differs from its transfer's")
        for t in repo.mixed_currency_transfers(session)
    ]
    for order_id, paid, refunded in repo.cash_by_order(session):
        if refunded > paid or refunded < 0:
            found.append(P.Violation("over_refund", order_id, f"paid {paid}, refunded {refunded}"))
    found += [
        P.Violation("restricted_negative", f"{k}:{o}", f"balance {s}")
        for k, o, s in repo.negative_accounts(session, P.RESTRICTED_KINDS)
    ]
    found += [
        P.Violation("packet_as_cash", t, "red-packet value paid out as cash")
        for t in repo.packet_cash_transfers(session)
    ]
    found += [
        P.Violation("fund_negative", f"{P.PROTECTION_FUND}:{c}", f"balance {b} after {t}")
        for c, t, b in repo.fund_dips(session)
    ]
    return found


# -- the protection fund ---------------------------------------------------------------------


def fund_top_up(
    decision_id: int, amount_minor: int, currency: str, *, session: Session, now: datetime,
    memo: str = "",
) -> str:  # fmt: skip
    """Fill the ``currency`` fund with an approved spend decision's amount (once per decision);
    returns the transfer's id."""
    draft = P.fund_top_up(decision_id, amount_minor, currency, memo=memo)
    post(draft, session=session, now=now)
    return draft.transfer_id


def fund_pay(
    refund_id: str, *, order_id: str, buyer_id: str, amount_minor: int, currency: str,
    session: Session, now: datetime,
) -> str:  # fmt: skip
    """Pay a refund from the ``currency`` fund in the merchant's place; returns the transfer id.

    Raises:
        Conflict: ``fund_insufficient`` — the fund holds less than ``amount_minor`` (nothing is
            written; the caller's transaction is whole).
    """
    repo.lock_fund(session, currency)
    held = repo.balance(session, P.PROTECTION_FUND, currency)
    if held < amount_minor:
        raise Conflict(
            f"the merchant protection fund holds {format_major(held, currency)} {currency}, less "
            f"than the {format_major(amount_minor, currency)} {currency} refund {refund_id} "
            "needs; top it up through an approved spend decision (tianping ledger fund top-up)",
            field="protection_fund",
            code="fund_insufficient",
        )
    draft = P.fund_payout(
        refund_id, order_id=order_id, buyer_id=buyer_id, amount_minor=amount_minor,
        currency=currency,
    )  # fmt: skip
    post(draft, session=session, now=now)
    return draft.transfer_id


def fund_balances(*, session: Session) -> dict[str, int]:
    """Each currency's protection-fund balance, in minor units."""
    return repo.fund_balances(session)


def fund_movements(*, session: Session, limit: int = 50):
    """The fund's latest movements, newest first, and how many there are in all."""
    return repo.fund_movements(session, limit=limit)


def fund_payouts(*, session: Session) -> dict[str, int]:
    """Every payout the fund made, by transfer id."""
    return repo.fund_payouts(session)


def summary(*, session: Session) -> dict[str, int]:
    """How many transfers and entries the ledger holds."""
    return {"transfers": repo.count_transfers(session), "entries": repo.count_entries(session)}


def fund_totals(*, session: Session) -> list[tuple[str, str, int, int]]:
    """``(currency, transfer kind, movements, signed sum)`` of the fund's movements."""
    return repo.fund_totals(session)
