"""How a refund request moves: a verdict applied (decision recorded, money paid, red packet
restored or not), events appended, timers set, the request locked with its order.

Shared by the requests' automatic decision, the people acting on a request and the SLA timers
(:mod:`~tianping.refunds.service`, :mod:`~tianping.refunds.timers`). Money moves only under the
order's row lock taken by :func:`locked`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy.orm import Session

from tianping.coupons import service as coupons
from tianping.coupons.rules import returns_packet
from tianping.errors import Conflict, InvalidInput, NotFound
from tianping.ledger import postings as P
from tianping.ledger import service as ledger
from tianping.refunds import lifecycle as L
from tianping.refunds import repository as repo
from tianping.refunds.env import Env
from tianping.refunds.models import Order, RefundRequest
from tianping.refunds.orders import get_order_or_raise


@dataclass(frozen=True)
class Verdict:
    """A decision to apply, whoever made it."""

    action: str
    refund_amount_minor: int
    requires_return: bool
    payer: str | None
    reasons: list[dict[str, str]]
    source: str
    decided_by: str
    rule_id: str | None = None
    policy_name: str | None = None
    policy_version: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    #: How long a negotiation the policy put first lasts (None: the store's merchant window).
    negotiation_sla: timedelta | None = None


def apply_verdict(
    req: RefundRequest, order: Order, v: Verdict, *, session: Session, env: Env, now: datetime
) -> None:
    """Apply a verdict to a request: record the decision, pay a refund now or wait for the return, or leave it to a person."""
    decision_id = record_decision(req, v, session=session, now=now)
    actor = v.decided_by
    if v.action in ("refund_only", "partial_refund"):
        amount = min(v.refund_amount_minor, req.requested_amount_minor)
        pay(
            req,
            order,
            amount,
            v.payer or "merchant",
            "refund",
            actor=actor,
            session=session,
            env=env,
            now=now,
        )
    elif v.action == "return_and_refund":
        req.payer = v.payer
        transition(req, "require_return", actor=actor, session=session, env=env, now=now)
    elif v.action == "merchant_negotiation":
        transition(
            req, "negotiate", actor=actor, session=session, env=env, now=now,
            delay=v.negotiation_sla,
        )  # fmt: skip
    elif v.action == "manual_review":
        transition(req, "escalate", actor=actor, session=session, env=env, now=now)
    elif v.action == "reject":
        order.reserved_minor -= req.requested_amount_minor
        transition(req, "reject", actor=actor, session=session, env=env, now=now)
    else:
        raise InvalidInput(f"unknown action {v.action!r}", field="action")
    req.decided_at = req.decided_at or now
    req.decision_id = decision_id


def record_decision(req: RefundRequest, v: Verdict, *, session: Session, now: datetime) -> int:
    """Append the decision row; returns its id."""
    row = {
        "source": v.source,
        "policy_name": v.policy_name,
        "policy_version": v.policy_version,
        "action": v.action,
        "refund_amount_minor": v.refund_amount_minor,
        "requires_return": v.requires_return,
        "payer": v.payer or "",
        "reasons": v.reasons,
        "rule_id": v.rule_id,
        "decided_by": v.decided_by,
        "decided_at": now,
    }
    decision_id = repo.insert_decision(session, {"refund_id": req.id, "inputs": v.inputs, **row})
    written = written_of(req)
    if written is not None:
        written.decision = decision_view(SimpleNamespace(**row))
    return decision_id


def pay(
    req: RefundRequest,
    order: Order,
    amount_minor: int,
    payer: str,
    event: str,
    *,
    actor: str,
    session: Session,
    env: Env,
    now: datetime,
) -> None:
    """Pay a request's refund: release its reservation, post the transfer, return the packet."""
    order.reserved_minor -= req.requested_amount_minor
    if amount_minor > 0:
        refunded_before = order.refunded_minor
        order.refunded_minor += amount_minor
        share = 0
        if payer == "merchant":
            share = coupons.refund_share(
                order.id,
                paid_minor=order.amount_minor,
                refunded_before_minor=refunded_before,
                refund_minor=amount_minor,
                session=session,
            )
        draft = P.refund(
            f"refund:{req.id}",
            order_id=order.id,
            buyer_id=order.buyer_id,
            cash_minor=amount_minor,
            packet_share_minor=share,
            payer=payer,
            currency=order.currency,
        )
        ledger.post(draft, session=session, now=now)
        req.refunded_minor, req.payer = amount_minor, payer
        if returns_packet(paid_minor=order.amount_minor, refunded_after_minor=order.refunded_minor):
            coupons.return_packet(
                order.id,
                refund_id=req.id,
                reason=req.reason,
                validity=env.config.replacement_validity,
                session=session,
                now=now,
            )
    transition(
        req,
        event,
        actor=actor,
        session=session,
        env=env,
        now=now,
        data={"amount_minor": amount_minor, "payer": payer},
    )


# -- transitions -----------------------------------------------------------------------------

WRITTEN = "_tianping_written"


@dataclass
class Written:
    """Every event, timer and decision row of a request created in this transaction.

    The answer to a new request is built from these instead of reading the rows back.
    """

    events: list[dict[str, Any]] = field(default_factory=list)
    timers: list[dict[str, Any]] = field(default_factory=list)
    decision: dict[str, Any] | None = None


def written_of(req: RefundRequest) -> Written | None:
    """The rows written for a request created in this transaction, if it was."""
    return req.__dict__.get(WRITTEN)


def append_event(
    req: RefundRequest,
    event: str,
    before: str | None,
    after: str,
    *,
    actor: str,
    now: datetime,
    session: Session,
    data: dict[str, Any] | None = None,
) -> None:
    """Append an event to a request's history (and to the rows its answer is built from)."""
    req.last_seq += 1
    row = {
        "seq": req.last_seq,
        "event": event,
        "from_status": before,
        "to_status": after,
        "actor": actor,
        "at": now,
        "data": data or {},
    }
    repo.insert_event(session, {"refund_id": req.id, **row})
    written = written_of(req)
    if written is not None:
        written.events.append(row)


def transition(
    req: RefundRequest,
    event: str,
    *,
    actor: str,
    session: Session,
    env: Env,
    now: datetime,
    data: dict[str, Any] | None = None,
    delay: timedelta | None = None,
) -> None:
    """Move a request by one event: close the timer of the status it leaves, start the next.

    ``delay`` sets the next status's timer instead of the store's window for it.
    """
    before = req.status
    after = L.next_status(before, event, refund_id=req.id)
    leaving = L.timer_for(before)
    if leaving is not None and L.TIMERS[leaving][1] != event:
        timer = repo.pending_timer(session, req.id, leaving)
        if timer is not None:
            repo.close_timer(session, timer.id, state="cancelled", now=now)
            req.__dict__.pop(WRITTEN, None)  # the journal no longer shows every row as stored
    append_event(req, event, before, after, actor=actor, now=now, session=session, data=data)
    req.status, req.updated_at = after, now
    entering = L.timer_for(after)
    if entering is not None:
        due = now + (delay if delay is not None else env.config.delay(entering))
        repo.insert_timer(session, {"refund_id": req.id, "kind": entering, "due_at": due})
        written = written_of(req)
        if written is not None:
            written.timers.append({"kind": entering, "due_at": due, "state": "pending"})


def locked(refund_id: str, *, session: Session) -> tuple[RefundRequest, Order]:
    """The request and its order, both row-locked (order first, the one lock order used)."""
    order_id = repo.order_id_of(session, refund_id)
    if order_id is None:
        raise NotFound(f"no refund request {refund_id!r}", field="id")
    order = get_order_or_raise(order_id, session=session, lock=True)
    req = repo.get_request(session, refund_id, lock=True)
    return req, order


def before_deadline(req: RefundRequest, *, session: Session, now: datetime) -> None:
    """:class:`Conflict` (``window_closed``) when the timer of the request's current status has already run out."""
    kind = L.timer_for(req.status)
    timer = repo.pending_timer(session, req.id, kind) if kind else None
    if timer is not None and now >= timer.due_at:
        raise Conflict(
            f"refund request {req.id}: the {L.WINDOW_NAMES[kind]} closed at "
            f"{timer.due_at.isoformat()}",
            field="status",
            code="window_closed",
        )


def merchant_refunds_in_full(
    req: RefundRequest,
    order: Order,
    reason: str,
    decided_by: str,
    event: str,
    *,
    actor: str,
    session: Session,
    env: Env,
    now: datetime,
) -> None:
    """Decide the whole requested amount as a refund paid by the merchant, and pay it."""
    v = Verdict(
        "refund_only",
        req.requested_amount_minor,
        False,
        "merchant",
        [reason_entry(reason)],
        decided_by,
        actor,
    )
    req.decision_id = record_decision(req, v, session=session, now=now)
    req.decided_at = now
    pay(
        req,
        order,
        req.requested_amount_minor,
        "merchant",
        event,
        actor=actor,
        session=session,
        env=env,
        now=now,
    )


def receive(
    req: RefundRequest,
    order: Order,
    event: str,
    *,
    actor: str,
    session: Session,
    env: Env,
    now: datetime,
) -> None:
    """The returned goods arrived: pay the decided refund (at most what was asked)."""
    decision = repo.get_decision(session, req.decision_id)
    amount = min(decision.refund_amount_minor, req.requested_amount_minor)
    req.returned = True
    pay(
        req,
        order,
        amount,
        decision.payer or "merchant",
        event,
        actor=actor,
        session=session,
        env=env,
        now=now,
    )


def decision_view(d) -> dict[str, Any]:
    """A decision row as the API shows it."""
    return {
        "action": d.action,
        "refund_amount_minor": d.refund_amount_minor,
        "requires_return": d.requires_return,
        "payer": d.payer or None,
        "reasons": d.reasons,
        "policy_version": d.policy_version,
        "policy_name": d.policy_name,
        "rule_id": d.rule_id,
        "source": d.source,
        "decided_by": d.decided_by,
        "decided_at": d.decided_at,
    }


def reason_entry(code: str, note: str = "") -> dict[str, str]:
    """A decision reason with one text for both buyer and merchant."""
    return {"code": code, "buyer": note, "merchant": note}
