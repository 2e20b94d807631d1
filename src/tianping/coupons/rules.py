"""What happens to a red packet when its order is refunded (pure: no I/O).

- Cash refunds never exceed the cash paid; a packet is never paid out as cash.
- Each refund the merchant pays hands the packet's pro-rated share of the refunded cash back
  to the platform's red-packet budget (cumulative floor, so the shares sum exactly to the
  packet's value when the order is refunded in full).
- The packet itself comes back only when the order's cash is refunded in full. A partial
  return that drops the goods the buyer keeps below the packet's spend threshold does not
  claw the discount back: the buyer keeps the pro-rated discount on what they keep.
- On the full refund: a packet still valid is restored as it was; an expired packet is
  replaced by a new one with a fresh validity when the refund reason is not the buyer's
  fault (the platform funds it), and lapses when it is.
"""

from __future__ import annotations

from datetime import datetime

#: Refund reasons that are not the buyer's fault: an expired packet is replaced.
NOT_BUYER_FAULT_REASONS = frozenset(
    {
        "quality",
        "quality_issue",
        "defective",
        "damaged",
        "not_as_described",
        "wrong_item",
        "missing_parts",
        "counterfeit",
        "not_received",
        "empty_parcel",
        "late_delivery",
        "merchant_cancelled",
        "out_of_stock",
    }
)
#: Refund reasons that are the buyer's choice: an expired packet lapses. Any reason not in
#: either list counts as the buyer's (the backstop is a promise for named merchant faults).
BUYER_FAULT_REASONS = frozenset(
    {
        "changed_mind",
        "no_longer_needed",
        "wrong_size",
        "ordered_by_mistake",
        "found_cheaper",
        "other",
    }
)

RESTORE = "restored"
REPLACE = "replaced"
LAPSE = "lapsed"


def is_buyer_fault(reason: str) -> bool:
    """Whether a refund reason is the buyer's own doing.

    >>> is_buyer_fault("damaged"), is_buyer_fault("changed_mind")
    (False, True)
    """
    return reason not in NOT_BUYER_FAULT_REASONS


def packet_outcome(*, expires_at: datetime, now: datetime, reason: str) -> str:
    """What a packet becomes when its order is fully refunded: restored, replaced or lapsed."""
    if now < expires_at:
        return RESTORE
    return LAPSE if is_buyer_fault(reason) else REPLACE


def packet_share(
    *, coupon_minor: int, paid_minor: int, refunded_before_minor: int, refund_minor: int
) -> int:
    """The packet's share of one refund: cumulative pro-rata, rounded down, exact in total.

    >>> [packet_share(coupon_minor=10, paid_minor=90, refunded_before_minor=b, refund_minor=30)
    ...  for b in (0, 30, 60)]
    [3, 3, 4]
    """
    if paid_minor <= 0 or coupon_minor <= 0:
        return 0
    after = refunded_before_minor + refund_minor
    return coupon_minor * after // paid_minor - coupon_minor * refunded_before_minor // paid_minor


def returns_packet(*, paid_minor: int, refunded_after_minor: int) -> bool:
    """The packet comes back once the order's cash is refunded in full."""
    return paid_minor > 0 and refunded_after_minor >= paid_minor
