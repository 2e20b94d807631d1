"""The refund request state machine and its SLA timers (pure: no I/O).

Every change of a request's status is one of the ``(status, event) → status`` transitions
below and is appended to the request's events; anything else is a :class:`Conflict`.
``docs/refunds.md`` draws the machine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import timedelta

from tianping.errors import Conflict, UsageError

REQUESTED = "requested"
NEGOTIATING = "negotiating"
MANUAL_REVIEW = "manual_review"
AWAITING_RETURN = "awaiting_return"
RETURN_SHIPPED = "return_shipped"
REFUNDED = "refunded"
APPEALED = "appealed"
CLOSED = "closed"
REJECTED = "rejected"
CANCELLED = "cancelled"

STATUSES = (
    REQUESTED,
    NEGOTIATING,
    MANUAL_REVIEW,
    AWAITING_RETURN,
    RETURN_SHIPPED,
    REFUNDED,
    APPEALED,
    CLOSED,
    REJECTED,
    CANCELLED,
)
#: Requests whose money is settled: nothing more will be paid on them.
FINAL = frozenset({CLOSED, REJECTED, CANCELLED})
#: Requests still holding part of the order's refundable cash for a refund not yet paid.
RESERVING = frozenset({REQUESTED, NEGOTIATING, MANUAL_REVIEW, AWAITING_RETURN, RETURN_SHIPPED})
#: Requests waiting on a person in the manual-review queue.
IN_QUEUE = frozenset({MANUAL_REVIEW, APPEALED})

TRANSITIONS: dict[tuple[str, str], str] = {
    (REQUESTED, "refund"): REFUNDED,
    (REQUESTED, "require_return"): AWAITING_RETURN,
    (REQUESTED, "negotiate"): NEGOTIATING,
    (REQUESTED, "escalate"): MANUAL_REVIEW,
    (REQUESTED, "reject"): REJECTED,
    (NEGOTIATING, "merchant_accepted"): REFUNDED,
    (NEGOTIATING, "merchant_silent"): REFUNDED,
    (NEGOTIATING, "merchant_refused"): MANUAL_REVIEW,
    # Negotiation first (a policy's capability) lapsed: the platform decides by the policy.
    (NEGOTIATING, "negotiation_lapsed"): REFUNDED,
    (NEGOTIATING, "negotiation_lapsed_return"): AWAITING_RETURN,
    (MANUAL_REVIEW, "refund"): REFUNDED,
    (MANUAL_REVIEW, "require_return"): AWAITING_RETURN,
    (MANUAL_REVIEW, "reject"): REJECTED,
    (AWAITING_RETURN, "return_shipped"): RETURN_SHIPPED,
    (AWAITING_RETURN, "return_not_shipped"): CANCELLED,
    (RETURN_SHIPPED, "return_received"): REFUNDED,
    (RETURN_SHIPPED, "receipt_not_confirmed"): REFUNDED,
    (REFUNDED, "appeal"): APPEALED,
    (REFUNDED, "appeal_window_closed"): CLOSED,
    (APPEALED, "appeal_upheld"): CLOSED,
    (APPEALED, "appeal_dismissed"): CLOSED,
}

#: Timer kind → (the status it guards, the event it fires when due).
TIMERS: dict[str, tuple[str, str]] = {
    "merchant_response": (NEGOTIATING, "merchant_silent"),
    "return_shipment": (AWAITING_RETURN, "return_not_shipped"),
    "return_receipt": (RETURN_SHIPPED, "receipt_not_confirmed"),
    "appeal_window": (REFUNDED, "appeal_window_closed"),
}
#: How each timer's window is named in messages.
WINDOW_NAMES = {
    "merchant_response": "merchant's response window",
    "return_shipment": "return shipment window",
    "return_receipt": "return receipt window",
    "appeal_window": "appeal window",
}
_TIMER_OF_STATUS = {status: kind for kind, (status, _event) in TIMERS.items()}


def next_status(status: str, event: str, *, refund_id: str = "") -> str:
    """The status after ``event``.

    >>> next_status("negotiating", "merchant_silent")
    'refunded'

    Raises:
        Conflict: the event is not allowed in this status.
    """
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        allowed = sorted(e for (s, e) in TRANSITIONS if s == status)
        raise Conflict(
            f"refund request {refund_id} is {status}: cannot {event.replace('_', ' ')}"
            + (f" (allowed: {', '.join(allowed)})" if allowed else " (it is final)"),
            field="status",
        ) from None


def timer_for(status: str) -> str | None:
    """The SLA timer that runs while a request is in ``status``, if any."""
    return _TIMER_OF_STATUS.get(status)


@dataclass(frozen=True, slots=True)
class RefundConfig:
    """How long each SLA window lasts and the packet backstop's validity.

    Every field can be set from the environment as ``TIANPING_<FIELD>`` in hours (the
    durations) or by name (``policy``).
    """

    merchant_response: timedelta = timedelta(hours=48)
    appeal_window: timedelta = timedelta(days=7)
    return_shipment: timedelta = timedelta(days=7)
    return_receipt: timedelta = timedelta(days=10)
    replacement_validity: timedelta = timedelta(days=7)
    policy: str = ""

    def delay(self, timer: str) -> timedelta:
        """How long the SLA timer ``timer`` (a field name, e.g. ``merchant_response``) runs."""
        return getattr(self, timer)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> RefundConfig:
        """Defaults overridden by ``TIANPING_MERCHANT_RESPONSE_HOURS`` and friends."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "policy":
                if environ.get("TIANPING_REFUND_POLICY"):
                    values["policy"] = environ["TIANPING_REFUND_POLICY"]
                continue
            name = f"TIANPING_{f.name.upper()}_HOURS"
            if name in environ:
                try:
                    hours = float(environ[name])
                except ValueError:
                    raise UsageError(f"{name} must be a number of hours", field=name) from None
                if hours <= 0:
                    raise UsageError(f"{name} must be positive", field=name)
                values[f.name] = timedelta(hours=hours)
        return cls(**values)  # type: ignore[arg-type]
