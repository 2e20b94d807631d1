"""Issue, redeem and the backstop when an order is refunded (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from refund_helpers import T0, make_env, order_in, refund_in, use_lifecycle_policy
from tianping.coupons import service as coupons
from tianping.coupons.models import Coupon
from tianping.errors import Conflict, InvalidInput
from tianping.ledger import postings as P
from tianping.ledger import repository as ledger_repo
from tianping.ledger import service as ledger
from tianping.refunds import orders as refund_orders
from tianping.refunds import service
from tianping.refunds import timers as refund_timers

SPEC = {"coupon_id": "c1", "amount_minor": 1000}


@pytest.fixture
def env(session):
    e = make_env()
    use_lifecycle_policy(session, e)
    return e


def _order(session, env, *, expires_in=timedelta(days=3), amount=9000, **kw):
    coupon = {**SPEC, "expires_at": T0 + expires_in, **kw}
    refund_orders.record_order(order_in("o1", amount, coupon=coupon), session=session, env=env)
    session.commit()


def _budget(session):
    return ledger_repo.balance(session, P.PLATFORM_REDPACKET_BUDGET, P.PLATFORM)


def test_redeem_moves_packet_value_into_escrow(session, env):
    _order(session, env)
    assert ledger_repo.balance(session, P.MERCHANT_ESCROW, "o1") == 10_000
    assert ledger_repo.balance(session, P.BUYER_REDPACKETS, "b1") == 0
    assert _budget(session) == -1000
    assert coupons.get_or_raise("c1", session=session).status == "redeemed"


def test_packet_stays_spent_while_the_return_is_pending(session, env):
    _order(session, env)
    req = service.request_refund(refund_in("o1", 9000, "changed_mind"), session=session, env=env)
    session.commit()
    assert req.status == "awaiting_return"
    assert coupons.get_or_raise("c1", session=session).status == "redeemed"


def test_valid_packet_is_restored_on_full_refund(session, env):
    # restored: refunded before expiry
    _order(session, env)
    service.request_refund(refund_in("o1", 9000, "quality"), session=session, env=env)
    session.commit()
    c = coupons.get_or_raise("c1", session=session)
    assert (c.status, c.order_id) == ("available", None)
    assert ledger_repo.balance(session, P.BUYER_REDPACKETS, "b1") == 1000
    assert ledger.check(session=session) == []


def test_expired_packet_replaced_once_when_not_buyers_fault(session, env):
    _order(session, env, expires_in=timedelta(days=1))
    env.clock.advance(days=2)
    service.request_refund(refund_in("o1", 9000, "quality"), session=session, env=env)
    session.commit()
    assert coupons.get_or_raise("c1", session=session).status == "replaced"
    new = coupons.get_or_raise("c1~r", session=session)
    assert (new.status, new.replaces_coupon_id, new.amount_minor) == ("available", "c1", 1000)
    assert new.expires_at == env.clock.now() + timedelta(days=7)
    assert ledger_repo.balance(session, P.BUYER_REDPACKETS, "b1") == 1000
    # The database itself refuses a second replacement of the same packet.
    session.add(
        Coupon(id="c1-again", buyer_id="b1", amount_minor=1000, currency="CNY", min_spend_minor=0,
               issued_at=T0, expires_at=T0, status="available", source="replacement", replaces_coupon_id="c1")
    )  # fmt: skip
    with pytest.raises(IntegrityError):
        session.flush()


def test_expired_packet_lapses_when_buyers_fault(session, env):
    _order(session, env, expires_in=timedelta(days=1))
    env.clock.advance(days=2)
    req = service.request_refund(refund_in("o1", 9000, "other"), session=session, env=env)
    session.commit()
    assert req.status == "refunded"
    assert coupons.get_or_raise("c1", session=session).status == "lapsed"
    assert ledger_repo.balance(session, P.BUYER_REDPACKETS, "b1") == 0
    assert _budget(session) == 0  # the merchant's escrow handed the packet's value back


def test_partial_refunds_prorate_the_packet_and_return_it_at_the_end(session, env):
    _order(session, env, min_spend_minor=10_000)
    for amount in (3000, 3000):
        service.request_refund(refund_in("o1", amount, "quality"), session=session, env=env)
    session.commit()
    # Kept goods fell below the 100.00 threshold: no clawback, packet stays spent, its share of
    # the refunded goods went back to the budget.
    assert coupons.get_or_raise("c1", session=session).status == "redeemed"
    assert _budget(session) == -1000 + 333 + 333
    assert ledger_repo.balance(session, P.MERCHANT_ESCROW, "o1") == 10_000 - 6000 - 666
    service.request_refund(refund_in("o1", 3000, "quality"), session=session, env=env)
    session.commit()
    assert coupons.get_or_raise("c1", session=session).status == "available"
    assert ledger_repo.balance(session, P.MERCHANT_ESCROW, "o1") == 0
    assert ledger.check(session=session) == []


def test_redeem_rules(session, env):
    coupons.issue(
        coupon_id="c9",
        buyer_id="b1",
        amount_minor=500,
        currency="CNY",
        expires_at=T0 + timedelta(days=1),
        min_spend_minor=20_000,
        session=session,
        now=T0,
    )
    session.commit()
    bad = [
        (
            {"coupon_id": "c9", "amount_minor": 500, "expires_at": T0},
            30_000,
            "b2",
            Conflict,
            "another buyer",
        ),
        (
            {"coupon_id": "c9", "amount_minor": 400, "expires_at": T0},
            30_000,
            "b1",
            InvalidInput,
            "worth 500",
        ),
        (
            {"coupon_id": "c9", "amount_minor": 500, "expires_at": T0},
            10_000,
            "b1",
            InvalidInput,
            "spend threshold",
        ),
    ]
    for i, (spec, amount, buyer, exc, msg) in enumerate(bad):
        with pytest.raises(exc, match=msg):
            refund_orders.record_order(
                order_in(f"x{i}", amount, buyer_id=buyer, coupon=spec), session=session, env=env
            )
        session.rollback()
    refund_orders.record_order(
        order_in("ok", 30_000, coupon={"coupon_id": "c9", "amount_minor": 500, "expires_at": T0}),
        session=session,
        env=env,
    )
    with pytest.raises(Conflict, match="redeemed, not available"):
        refund_orders.record_order(
            order_in(
                "twice", 30_000, coupon={"coupon_id": "c9", "amount_minor": 500, "expires_at": T0}
            ),
            session=session,
            env=env,
        )


def test_expired_unspent_packets_lapse_on_tick(session, env):
    coupons.issue(
        coupon_id="c5",
        buyer_id="b1",
        amount_minor=500,
        currency="CNY",
        expires_at=T0 + timedelta(hours=1),
        session=session,
        now=T0,
    )
    session.commit()
    env.clock.advance(hours=2)
    assert refund_timers.tick(session=session, env=env) == {"timers_fired": 0, "coupons_expired": 1}
    assert refund_timers.tick(session=session, env=env)["coupons_expired"] == 0
    assert coupons.get_or_raise("c5", session=session).status == "expired"
    assert ledger_repo.balance(session, P.BUYER_REDPACKETS, "b1") == 0
