"""Random sequences of orders, refunds, appeals, returns and expiries keep the books right.

A hypothesis state machine drives the service layer the API calls (through the same
idempotency wrapper) on SQLite and PostgreSQL. After every step: the ledger balances, no
order is over-refunded, the order rows agree with the ledger, every buyer's red-packet balance
equals the packets they can spend, and no packet came back more often than it was spent.
After every sequence: replaying each stored policy decision with its stored inputs and policy
version gives the identical decision.
"""

from __future__ import annotations

import itertools
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from refund_helpers import LIFECYCLE_POLICY, T0, make_env, order_in, refund_in
from tianping.api import idempotency
from tianping.api.deps import Store
from tianping.clock import FixedClock
from tianping.coupons.models import Coupon, CouponRedemption
from tianping.errors import TianpingError
from tianping.ledger import postings as P
from tianping.ledger import repository as ledger_repo
from tianping.ledger import service as ledger
from tianping.ledger.models import LedgerTransfer
from tianping.refunds import orders as refund_orders
from tianping.refunds import policies, service
from tianping.refunds import reconcile as refund_reconcile
from tianping.refunds import timers as refund_timers
from tianping.refunds.models import Order
from tianping.refunds.schemas import (
    AppealIn,
    MerchantResponseIn,
    ReturnReceivedIn,
    ReturnShippedIn,
    ReviewIn,
)
from tianping.store import make_sessionmaker

REASONS = [
    "quality",
    "damaged",
    "wrong_size",
    "changed_mind",
    "not_received",
    "empty_parcel",
    "fraud",
    "other",
]
ACTIONS = [
    "appeal",
    "accept",
    "refuse",
    "ship",
    "receive",
    "review_refund",
    "review_partial",
    "review_return",
    "review_reject",
    "uphold",
    "dismiss",
]
#: What a person can do to a request in each status (anything else must be refused).
MOVES = {
    "negotiating": ["accept", "refuse"],
    "manual_review": ["review_refund", "review_partial", "review_return", "review_reject"],
    "awaiting_return": ["ship", "receive"],
    "return_shipped": ["receive"],
    "refunded": ["appeal"],
    "appealed": ["uphold", "dismiss"],
}
RUNS = settings(
    max_examples=8,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _act(refund_id: str, action: str, session, env):
    review = {
        "review_refund": ReviewIn(action="refund_only"),
        "review_partial": ReviewIn(
            action="partial_refund", refund_amount_minor=1, payer="platform"
        ),
        "review_return": ReviewIn(action="return_and_refund"),
        "review_reject": ReviewIn(action="reject"),
        "uphold": ReviewIn(action="uphold_appeal"),
        "dismiss": ReviewIn(action="dismiss_appeal"),
    }
    if action in review:
        return service.review(refund_id, review[action], reviewer="ops", session=session, env=env)
    if action == "appeal":
        return service.appeal(refund_id, AppealIn(), session=session, env=env)
    if action in ("accept", "refuse"):
        body = MerchantResponseIn(accept=action == "accept")
        return service.respond_as_merchant(refund_id, body, session=session, env=env)
    if action == "ship":
        return service.return_shipped(refund_id, ReturnShippedIn(), session=session, env=env)
    return service.return_received(refund_id, ReturnReceivedIn(), session=session, env=env)


def _machine(engine):
    sessions = make_sessionmaker(engine)

    class Books(RuleBasedStateMachine):
        orders = Bundle("orders")
        requests = Bundle("requests")

        def __init__(self):
            super().__init__()
            self.tag = uuid.uuid4().hex[:8]
            self.env = make_env(FixedClock(T0))
            self.store = Store(sessions, self.env)
            self.store.transact(
                lambda s: policies.activate_policy(LIFECYCLE_POLICY, session=s, now=T0)
            )
            self.n = 0
            self.amounts: dict[str, int] = {}

        def _id(self, kind: str) -> str:
            self.n += 1
            return f"{self.tag}-{kind}{self.n}"

        @rule(
            target=orders,
            amount=st.integers(1, 50_000),
            buyer=st.integers(0, 2),
            packet=st.none() | st.tuples(st.integers(1, 5_000), st.integers(0, 6)),
        )
        def add_order(self, amount, buyer, packet):
            now = self.env.clock.now()
            coupon = None
            if packet is not None:
                expires = now + timedelta(days=packet[1], hours=1)
                coupon = {
                    "coupon_id": self._id("c"),
                    "amount_minor": packet[0],
                    "expires_at": expires,
                }
            data = order_in(
                self._id("o"),
                amount,
                buyer_id=f"{self.tag}-b{buyer}",
                coupon=coupon,
                paid_at=now - timedelta(days=3),  # delivered two days later, before now
            )
            self.store.transact(lambda s: refund_orders.record_order(data, session=s, env=self.env))
            self.amounts[data.order_id] = amount
            return data.order_id

        @rule(
            target=requests,
            order_id=orders,
            pct=st.sampled_from([100, 100, 60, 40, 130]),
            reason=st.sampled_from(REASONS),
            retry=st.booleans(),
        )
        def request(self, order_id, pct, reason, retry):
            amount = max(1, self.amounts[order_id] * pct // 100)
            body = refund_in(order_id, amount, reason)
            key = self._id("k")

            def work(s):
                return 201, {"id": service.request_refund(body, session=s, env=self.env).id}

            try:
                _status, out, _ = idempotency.run(
                    self.store, caller="k1", scope="refund-requests", key=key, body=body, work=work
                )
            except TianpingError as exc:
                assert exc.code == "exceeds_refundable", exc.message
                return multiple()
            if retry:  # a client retry: the same answer, nothing paid twice
                again = idempotency.run(
                    self.store, caller="k1", scope="refund-requests", key=key, body=body, work=work
                )
                assert again[1] == out and again[2] is True
            return out["id"]

        @rule(refund_id=requests, data=st.data(), anything=st.booleans())
        def act(self, refund_id, data, anything):
            status = self.store.read(lambda s: service.get_or_raise(refund_id, session=s).status)
            moves = ACTIONS if anything or status not in MOVES else MOVES[status]
            action = data.draw(st.sampled_from(moves), label="action")
            try:
                self.store.transact(lambda s: _act(refund_id, action, s, self.env))
                event(f"{action} applied")
            except TianpingError as exc:
                # Only a move the lifecycle does not allow from where the request is, or an
                # upheld appeal the protection fund cannot cover yet (nothing written).
                allowed = ("conflict", "window_closed", "invalid_input", "fund_insufficient")
                assert exc.code in allowed, exc.message
                if exc.code == "fund_insufficient":
                    event("upheld appeal refused: fund too small")

        @rule(amount=st.integers(1, 30_000))
        def fund_top_up(self, amount):
            """An approved spend fills the protection fund: upheld appeals pay from it."""
            number = next(TOP_UPS)
            self.store.transact(
                lambda s: ledger.fund_top_up(
                    number, amount, "CNY", session=s, now=self.env.clock.now()
                )
            )

        @rule(hours=st.integers(1, 24 * 9))
        def time_passes(self, hours):
            self.env.clock.advance(hours=hours)
            self.store.transact(lambda s: refund_timers.tick(session=s, env=self.env))

        @invariant()
        def books_are_right(self):
            self.store.read(self._check)

        def _check(self, s):
            assert refund_reconcile.audit(session=s) == []
            mine = select(Order).where(Order.id.like(f"{self.tag}-%"))
            for order in s.execute(mine).scalars():
                assert 0 <= order.refunded_minor <= order.amount_minor
                assert order.reserved_minor >= 0
            for b in range(3):
                buyer = f"{self.tag}-b{b}"
                spendable = s.execute(
                    select(func.coalesce(func.sum(Coupon.amount_minor), 0)).where(
                        Coupon.buyer_id == buyer, Coupon.status == "available"
                    )
                ).scalar_one()
                assert ledger_repo.balance(s, P.BUYER_REDPACKETS, buyer) == spendable
            coupons = select(Coupon).where(Coupon.id.like(f"{self.tag}-%"))
            for c in s.execute(coupons).scalars():
                spent = s.execute(
                    select(func.count()).where(CouponRedemption.coupon_id == c.id)
                ).scalar_one()
                restored = s.execute(
                    select(func.count()).where(LedgerTransfer.id.like(f"coupon:{c.id}:restore:%"))
                ).scalar_one()
                replaced = s.execute(
                    select(func.count()).where(Coupon.replaces_coupon_id == c.id)
                ).scalar_one()
                assert replaced <= 1
                assert restored + replaced <= spent

        def teardown(self):
            statuses = self.store.read(
                lambda s: set(
                    s.execute(
                        select(Coupon.status).where(Coupon.id.like(f"{self.tag}-%"))
                    ).scalars()
                )
            )
            for status in statuses:
                event(f"a packet ended {status}")
            result = self.store.read(lambda s: refund_reconcile.replay(session=s))
            assert result.mismatches == []

    return Books


#: Decision numbers of the fund's top-ups, unique across the machines sharing a database.
TOP_UPS = itertools.count(1)


def test_random_sequences_keep_the_books(engine):
    run_state_machine_as_test(_machine(engine), settings=RUNS)


def test_concurrent_ticks_fire_each_timer_once(engine):
    env = make_env()
    store = Store(make_sessionmaker(engine), env)
    store.transact(lambda s: policies.activate_policy(LIFECYCLE_POLICY, session=s, now=T0))
    for i in range(6):
        data = order_in(f"o{i}", 1000)
        store.transact(lambda s, d=data: refund_orders.record_order(d, session=s, env=env))
        body = refund_in(f"o{i}", 1000, "not_received")
        store.transact(lambda s, b=body: service.request_refund(b, session=s, env=env))
    env.clock.advance(hours=48)
    with ThreadPoolExecutor(max_workers=4) as pool:
        fired = list(
            pool.map(
                lambda _: store.transact(lambda s: refund_timers.tick(session=s, env=env)),
                range(4),
            )
        )
    assert sum(f["timers_fired"] for f in fired) == 6
    refunds = store.read(
        lambda s: s.execute(
            select(func.count()).where(LedgerTransfer.kind == P.REFUND)
        ).scalar_one()
    )
    assert refunds == 6
    assert store.read(lambda s: refund_reconcile.audit(session=s)) == []
