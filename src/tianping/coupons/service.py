"""Issuing, redeeming and returning red packets; every value move is a ledger transfer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tianping.audit import log as audit
from tianping.coupons import repository as repo
from tianping.coupons import rules
from tianping.coupons.models import (
    AVAILABLE,
    EXPIRED,
    LAPSED,
    REDEEMED,
    REPLACED,
    Coupon,
    CouponRedemption,
)
from tianping.errors import Conflict, InvalidInput, NotFound
from tianping.ledger import postings as P
from tianping.ledger import service as ledger


def issue(
    *,
    coupon_id: str,
    buyer_id: str,
    amount_minor: int,
    currency: str,
    expires_at: datetime,
    min_spend_minor: int = 0,
    source: str = "issued",
    replaces: str | None = None,
    session: Session,
    now: datetime,
    valid_at: datetime | None = None,
) -> Coupon:
    """Issue a packet to a buyer, funded by the platform's red-packet budget.

    ``valid_at`` is the instant the packet must not yet have expired at: ``now`` for a packet
    issued now, the order's payment for a packet first seen on an order recorded later.
    """
    if amount_minor <= 0:
        raise InvalidInput("a red packet's amount_minor must be positive", field="amount_minor")
    valid_at = now if valid_at is None else valid_at
    if expires_at <= valid_at:
        what = "issued" if valid_at == now else "spent"
        raise InvalidInput(
            f"expires_at {expires_at:%Y-%m-%d %H:%M} UTC is not after the packet is {what} "
            f"({valid_at:%Y-%m-%d %H:%M})",
            field="expires_at",
            code="already_expired",
        )
    if repo.get(session, coupon_id) is not None:
        raise Conflict(f"coupon {coupon_id!r} already exists", field="coupon_id")
    coupon = Coupon(
        id=coupon_id,
        buyer_id=buyer_id,
        amount_minor=amount_minor,
        currency=currency,
        min_spend_minor=min_spend_minor,
        issued_at=now,
        expires_at=expires_at,
        status=AVAILABLE,
        source=source,
        replaces_coupon_id=replaces,
    )
    session.add(coupon)
    session.flush()
    kind = P.REDPACKET_REPLACEMENT if replaces else P.REDPACKET_ISSUE
    draft = P.redpacket_issue(
        f"coupon:{coupon_id}:issue", buyer_id, amount_minor, currency, kind=kind
    )
    ledger.post(draft, session=session, now=now)
    detail = {"buyer_id": buyer_id, "amount_minor": amount_minor, "currency": currency,
              "expires_at": expires_at, "source": source, "replaces": replaces}  # fmt: skip
    audit.later("coupon.issued", subject=f"coupon:{coupon_id}", now=now, detail=detail,
                session=session)  # fmt: skip
    return coupon


def get_or_raise(coupon_id: str, *, session: Session) -> Coupon:
    """The packet ``coupon_id``; :class:`NotFound` when there is none."""
    coupon = repo.get(session, coupon_id)
    if coupon is None:
        raise NotFound(f"no coupon {coupon_id!r}", field="coupon_id")
    return coupon


@dataclass(frozen=True, slots=True)
class Redemption:
    """A packet as the marketplace reports it on an order."""

    coupon_id: str
    amount_minor: int
    expires_at: datetime
    min_spend_minor: int | None = None


def redeem(
    spec: Redemption,
    *,
    order_id: str,
    buyer_id: str,
    cash_minor: int,
    currency: str,
    paid_at: datetime,
    session: Session,
    now: datetime,
) -> Coupon:
    """Spend a packet on an order; a packet tianping has not seen is first issued as reported."""
    coupon = repo.get(session, spec.coupon_id, lock=True)
    if coupon is None:
        coupon = issue(
            coupon_id=spec.coupon_id,
            buyer_id=buyer_id,
            amount_minor=spec.amount_minor,
            currency=currency,
            expires_at=spec.expires_at,
            min_spend_minor=spec.min_spend_minor or 0,
            source="reported",
            session=session,
            now=now,
            valid_at=paid_at,
        )
    _check_redeemable(coupon, spec, buyer_id, cash_minor, currency, paid_at)
    coupon.status, coupon.order_id = REDEEMED, order_id
    session.add(
        CouponRedemption(
            coupon_id=coupon.id,
            order_id=order_id,
            amount_minor=coupon.amount_minor,
            redeemed_at=now,
        )
    )
    session.flush()
    draft = P.redpacket_redeem(coupon.id, order_id, buyer_id, coupon.amount_minor, currency)
    ledger.post(draft, session=session, now=now)
    audit.later("coupon.redeemed", subject=f"coupon:{coupon.id}", now=now, session=session,
                detail={"order_id": order_id, "amount_minor": coupon.amount_minor})  # fmt: skip
    return coupon


def _check_redeemable(
    coupon: Coupon,
    spec: Redemption,
    buyer_id: str,
    cash_minor: int,
    currency: str,
    paid_at: datetime,
) -> None:
    cid = coupon.id
    if coupon.buyer_id != buyer_id:
        raise Conflict(f"coupon {cid} belongs to another buyer", field="coupon.coupon_id")
    if coupon.status != AVAILABLE:
        raise Conflict(f"coupon {cid} is {coupon.status}, not available", field="coupon.coupon_id")
    if coupon.amount_minor != spec.amount_minor or coupon.currency != currency:
        raise InvalidInput(
            f"coupon {cid} is worth {coupon.amount_minor} {coupon.currency}, "
            f"not {spec.amount_minor} {currency}",
            field="coupon.amount_minor",
        )
    if paid_at >= coupon.expires_at:
        raise InvalidInput(
            f"coupon {cid} expired before the order was paid", field="coupon.expires_at"
        )
    if cash_minor + coupon.amount_minor < coupon.min_spend_minor:
        raise InvalidInput(
            f"order value {cash_minor + coupon.amount_minor} is below coupon {cid}'s "
            f"spend threshold {coupon.min_spend_minor}",
            field="coupon.amount_minor",
        )


def refund_share(
    order_id: str,
    *,
    paid_minor: int,
    refunded_before_minor: int,
    refund_minor: int,
    session: Session,
) -> int:
    """The order's packet's pro-rated share of a refund (0 when no packet was spent on it)."""
    red = repo.redemption_of(session, order_id)
    if red is None:
        return 0
    return rules.packet_share(
        coupon_minor=red.amount_minor,
        paid_minor=paid_minor,
        refunded_before_minor=refunded_before_minor,
        refund_minor=refund_minor,
    )


def return_packet(
    order_id: str,
    *,
    refund_id: str,
    reason: str,
    validity: timedelta,
    session: Session,
    now: datetime,
) -> str | None:
    """Give the order's packet back after a full refund: restored, replaced or lapsed.

    Returns the outcome, or None when no packet was spent on the order or it was already
    returned (each redemption is returned at most once).
    """
    red = repo.redemption_of(session, order_id)
    if red is None:
        return None
    coupon = repo.get(session, red.coupon_id, lock=True)
    outcome = rules.packet_outcome(expires_at=coupon.expires_at, now=now, reason=reason)
    if not repo.mark_returned(session, red.id, now=now, outcome=outcome, refund_id=refund_id):
        return None
    if outcome == rules.RESTORE:
        _restore(coupon, order_id, session=session, now=now)
    elif outcome == rules.REPLACE:
        _replace(coupon, validity, session=session, now=now)
    else:
        coupon.status = LAPSED
    return outcome


def _restore(coupon: Coupon, order_id: str, *, session: Session, now: datetime) -> None:
    coupon.status, coupon.order_id = AVAILABLE, None
    draft = P.redpacket_issue(
        f"coupon:{coupon.id}:restore:{order_id}",
        coupon.buyer_id,
        coupon.amount_minor,
        coupon.currency,
        kind=P.REDPACKET_RESTORE,
    )
    ledger.post(draft, session=session, now=now)


def _replace(coupon: Coupon, validity: timedelta, *, session: Session, now: datetime) -> None:
    coupon.status = REPLACED
    issue(
        coupon_id=f"{coupon.id}~r",
        buyer_id=coupon.buyer_id,
        amount_minor=coupon.amount_minor,
        currency=coupon.currency,
        expires_at=now + validity,
        min_spend_minor=coupon.min_spend_minor,
        source="replacement",
        replaces=coupon.id,
        session=session,
        now=now,
    )


def expire_due(*, session: Session, now: datetime, limit: int = 1000) -> int:
    """Lapse unspent packets past their expiry: their value goes back to the budget."""
    due = repo.due_expiries(session, now, limit)
    for coupon in due:
        coupon.status = EXPIRED
        draft = P.redpacket_lapse(
            f"coupon:{coupon.id}:expire",
            (P.BUYER_REDPACKETS, coupon.buyer_id),
            coupon.amount_minor,
            coupon.currency,
            None,
        )
        ledger.post(draft, session=session, now=now)
    return len(due)


def of_buyer(buyer_id: str, *, session: Session, limit: int, offset: int) -> list[Coupon]:
    """A page of a buyer's packets, oldest first."""
    return repo.of_buyer(session, buyer_id, limit=limit, offset=offset)
