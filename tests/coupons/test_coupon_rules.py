"""Red-packet rules on refunds (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tianping.coupons import rules

NOW = datetime(2025, 1, 10, tzinfo=UTC)


def test_outcome_by_expiry_and_fault():
    later, earlier = NOW + timedelta(seconds=1), NOW - timedelta(seconds=1)
    assert rules.packet_outcome(expires_at=later, now=NOW, reason="changed_mind") == rules.RESTORE
    assert rules.packet_outcome(expires_at=earlier, now=NOW, reason="damaged") == rules.REPLACE
    assert rules.packet_outcome(expires_at=NOW, now=NOW, reason="not_received") == rules.REPLACE
    assert rules.packet_outcome(expires_at=earlier, now=NOW, reason="changed_mind") == rules.LAPSE
    assert rules.packet_outcome(expires_at=earlier, now=NOW, reason="something_new") == rules.LAPSE


def test_fault_lists_do_not_overlap():
    assert not rules.NOT_BUYER_FAULT_REASONS & rules.BUYER_FAULT_REASONS


def test_share_example_from_the_docs():
    # 90 cash + 10 packet; three refunds of 30 cash hand back 3, 3 and 4 of the packet.
    shares = [
        rules.packet_share(coupon_minor=10, paid_minor=90, refunded_before_minor=b, refund_minor=30)
        for b in (0, 30, 60)
    ]
    assert shares == [3, 3, 4]


@given(
    coupon=st.integers(1, 10**6),
    paid=st.integers(1, 10**7),
    cuts=st.lists(st.integers(0, 10**7), max_size=8),
)
def test_shares_sum_to_the_packet_exactly_at_full_refund(coupon, paid, cuts):
    points = sorted({min(c, paid) for c in cuts} | {0, paid})
    shares = [
        rules.packet_share(
            coupon_minor=coupon, paid_minor=paid, refunded_before_minor=a, refund_minor=b - a
        )
        for a, b in zip(points, points[1:], strict=False)
    ]
    assert all(s >= 0 for s in shares)
    assert sum(shares) == coupon
    assert rules.returns_packet(paid_minor=paid, refunded_after_minor=paid)
    assert not rules.returns_packet(paid_minor=paid, refunded_after_minor=paid - 1)
