"""Shared by the refund, coupon, ledger and API tests: a clock, an environment, orders and a
small policy whose action follows the refund reason, so each path of the lifecycle is reachable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tianping.aftersales.policy import parse_policy
from tianping.clock import FixedClock
from tianping.refunds.env import Env
from tianping.refunds.lifecycle import RefundConfig
from tianping.refunds.schemas import OrderIn, RefundRequestIn
from tianping.refunds.signals import Norms

T0 = datetime(2025, 1, 10, tzinfo=UTC)

_RULES = [
    ("quality", {"action": "refund_only", "payer": "merchant"}),
    ("damaged", {"action": "refund_only", "payer": "platform"}),
    ("wrong_size", {"action": "partial_refund", "fraction": 0.5, "payer": "merchant"}),
    ("changed_mind", {"action": "return_and_refund", "payer": "merchant"}),
    ("not_received", {"action": "merchant_negotiation"}),
    ("empty_parcel", {"action": "manual_review"}),
    ("fraud", {"action": "reject"}),
]

LIFECYCLE_POLICY = parse_policy(
    {
        "name": "lifecycle-test",
        "title": "One action per reason",
        "source": "tests",
        "description": "Routes each refund reason to one action so tests reach every path.",
        "currency": "CNY",
        "rounding": "half_up",
        "reasons": {"r": {"buyer": "test", "merchant": "test"}},
        "rules": [
            {
                "id": f"rule-{reason}",
                "priority": 10,
                "when": {"reason": reason},
                "then": {**then, "reasons": ["r"]},
            }
            for reason, then in _RULES
        ]
        + [
            {
                "id": "otherwise",
                "priority": 0,
                "then": {"action": "refund_only", "payer": "merchant", "reasons": ["r"]},
            }
        ],
    }
)


#: Claims from a buyer whose ring of 3+ linked accounts saw 2+ of them claim within 48 h go to a
#: person; everything else is refunded.
RING_POLICY = parse_policy(
    {
        "name": "ring-test",
        "title": "Rings to a person",
        "source": "tests",
        "currency": "CNY",
        "reasons": {"r": {"buyer": "b", "merchant": "m"}},
        "rules": [
            {"id": "abuse-ring", "priority": 10,
             "when": {"ring_size": {"gte": 3}, "ring_burst_accounts": {"gte": 2}},
             "then": {"action": "manual_review", "reasons": ["r"]}},
            {"id": "otherwise", "priority": 0,
             "then": {"action": "refund_only", "payer": "merchant", "reasons": ["r"]}},
        ],
    }
)  # fmt: skip


def make_env(clock: FixedClock | None = None, **config) -> Env:
    from tianping.races.refund_arms import arm_for

    return Env(
        clock=clock or FixedClock(T0), config=RefundConfig(**config), norms=Norms(ttl=timedelta(0)),
        arms=arm_for,
    )  # fmt: skip


def use_lifecycle_policy(session, env: Env) -> None:
    from tianping.refunds import policies

    policies.activate_policy(LIFECYCLE_POLICY, session=session, now=env.clock.now())
    session.commit()


def order_in(
    order_id: str = "o1",
    amount_minor: int = 10_000,
    *,
    buyer_id: str = "b1",
    merchant_id: str = "m1",
    product_id: str = "p1",
    category: str = "food",
    coupon: dict | None = None,
    paid_at: datetime = T0 - timedelta(days=5),
    delivered: bool = True,
) -> OrderIn:
    return OrderIn(
        order_id=order_id,
        buyer_id=buyer_id,
        merchant_id=merchant_id,
        product_id=product_id,
        category=category,
        amount_minor=amount_minor,
        currency="CNY",
        coupon=coupon,
        paid_at=paid_at,
        delivered_at=paid_at + timedelta(days=2) if delivered else None,
    )


def refund_in(
    order_id: str = "o1", amount_minor: int = 10_000, reason: str = "quality"
) -> RefundRequestIn:
    return RefundRequestIn(order_id=order_id, reason=reason, requested_amount_minor=amount_minor)


def order_json(order_id: str = "o1", amount_minor: int = 10_000, **kw) -> dict:
    return order_in(order_id, amount_minor, **kw).model_dump(mode="json")
