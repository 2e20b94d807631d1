"""The refund lifecycle as service functions. They take ``*, session`` and never commit.

Money moves only under the order's row lock (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite
takes the write lock at ``BEGIN IMMEDIATE``): a request first reserves its amount against
``paid − refunded − reserved``, and the database refuses an order row whose refunded plus
reserved cash exceeds what was paid.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy.orm import Session

from tianping.aftersales.policy import RefundInputs, evaluate
from tianping.aftersales.vocabulary import canonical_reason
from tianping.audit import log as audit_log
from tianping.clock import Clock, SystemClock, ensure_utc
from tianping.coupons import service as coupons
from tianping.coupons.rules import returns_packet
from tianping.errors import Conflict, InvalidInput, NotFound
from tianping.inputs import instant as checked_instant
from tianping.ledger import postings as P
from tianping.ledger import service as ledger
from tianping.money import exponent_of
from tianping.refunds import lifecycle as L
from tianping.refunds import policies, race_policy, signals
from tianping.refunds import repository as repo
from tianping.refunds.models import Order, RefundRequest
from tianping.refunds.schemas import (
    AppealIn,
    MerchantResponseIn,
    OrderIn,
    RefundRequestIn,
    ReturnReceivedIn,
    ReturnShippedIn,
    ReviewIn,
)


@dataclass
class Env:
    """What the lifecycle needs besides the session: the clock, the SLA config, the norms and
    who assigns buyers to policies under test (``arms``: the horse races'
    :func:`tianping.races.refund_arms.arm_for`, given by the app; None: the active policy
    decides every request)."""

    clock: Clock = field(default_factory=SystemClock)
    config: L.RefundConfig = field(default_factory=L.RefundConfig)
    norms: signals.Norms = field(default_factory=signals.Norms)
    arms: race_policy.PolicyArms | None = None


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


# -- orders ----------------------------------------------------------------------------------


def record_order(data: OrderIn, *, session: Session, env: Env) -> tuple[Order, bool]:
    """Record a paid order: its cash into escrow, and its red packet redeemed.

    Returns:
        The order and whether it was new. A repeated report is accepted again, and may add
        the delivery time the first report did not have.

    Raises:
        Conflict: the order id was recorded with different details, or the packet cannot be
            spent (another buyer's, already spent).
        InvalidInput: unknown currency, delivery before payment, packet rules broken.
    """
    now = env.clock.now()
    exponent_of(data.currency)
    paid_at = checked_instant(data.paid_at, field="paid_at", now=now)
    delivered_at = None
    if data.delivered_at is not None:
        delivered_at = checked_instant(data.delivered_at, field="delivered_at", now=now)
    if delivered_at is not None and delivered_at < paid_at:
        raise InvalidInput(
            "delivered_at is before paid_at", field="delivered_at", code="before_payment"
        )
    existing = repo.get_order(session, data.order_id, lock=True)
    if existing is not None:
        _same_order(existing, data)
        if _note_delivery(existing, delivered_at):
            audit_log.later("order.delivered", subject=f"order:{existing.id}", now=now,
                            detail={"delivered_at": delivered_at}, session=session)  # fmt: skip
        return existing, False
    order = Order(
        id=data.order_id,
        buyer_id=data.buyer_id,
        merchant_id=data.merchant_id,
        product_id=data.product_id,
        category=data.category,
        amount_minor=data.amount_minor,
        currency=data.currency,
        coupon_id=data.coupon.coupon_id if data.coupon else None,
        coupon_minor=data.coupon.amount_minor if data.coupon else 0,
        paid_at=paid_at,
        delivered_at=delivered_at,
        recorded_at=now,
        refunded_minor=0,
        reserved_minor=0,
    )
    session.add(order)
    session.flush()
    if data.amount_minor > 0:
        draft = P.order_payment(order.id, order.buyer_id, order.amount_minor, order.currency)
        ledger.post(draft, session=session, now=now)
    if data.coupon is not None:
        spec = coupons.Redemption(
            data.coupon.coupon_id,
            data.coupon.amount_minor,
            ensure_utc(data.coupon.expires_at),
            data.coupon.min_spend_minor,
        )
        coupons.redeem(
            spec,
            order_id=order.id,
            buyer_id=order.buyer_id,
            cash_minor=order.amount_minor,
            currency=order.currency,
            paid_at=paid_at,
            session=session,
            now=now,
        )
    detail = {"buyer_id": order.buyer_id, "merchant_id": order.merchant_id,
              "product_id": order.product_id, "category": order.category,
              "amount_minor": order.amount_minor, "currency": order.currency,
              "coupon_id": order.coupon_id, "coupon_minor": order.coupon_minor,
              "paid_at": paid_at, "delivered_at": delivered_at}  # fmt: skip
    audit_log.later("order.recorded", subject=f"order:{order.id}", now=now, detail=detail,
                    session=session)  # fmt: skip
    return order, True


def _note_delivery(order: Order, delivered_at: datetime | None) -> bool:
    """A later report of the same order may add its delivery; it may not change it.

    Returns whether it added it."""
    if delivered_at is None or delivered_at == order.delivered_at:
        return False
    if order.delivered_at is not None:
        raise Conflict(
            f"order {order.id} was already reported delivered at {order.delivered_at.isoformat()}",
            field="delivered_at",
        )
    order.delivered_at = delivered_at
    return True


def _same_order(order: Order, data: OrderIn) -> None:
    theirs = (
        data.buyer_id,
        data.merchant_id,
        data.product_id,
        data.category,
        data.amount_minor,
        data.currency,
        data.coupon.coupon_id if data.coupon else None,
        ensure_utc(data.paid_at),
    )
    ours = (
        order.buyer_id,
        order.merchant_id,
        order.product_id,
        order.category,
        order.amount_minor,
        order.currency,
        order.coupon_id,
        order.paid_at,
    )
    if theirs != ours:
        raise Conflict(
            f"order {order.id} was already recorded with different details", field="order_id"
        )


def get_order_or_raise(order_id: str, *, session: Session, lock: bool = False) -> Order:
    order = repo.get_order(session, order_id, lock=lock)
    if order is None:
        raise NotFound(f"unknown order {order_id!r}", field="order_id")
    return order


def order_ledger(order_id: str, *, session: Session, limit: int, offset: int) -> dict[str, Any]:
    """An order's ledger entries (a page) and its cash totals."""
    order = get_order_or_raise(order_id, session=session)
    cash = ledger.order_cash(order_id, session=session)
    rows, total = ledger.order_entries(order_id, session=session, limit=limit, offset=offset)
    entries = [
        {
            "transfer_id": e.transfer_id,
            "kind": kind,
            "account": f"{e.account_kind}:{e.account_owner}",
            "amount_minor": e.amount_minor,
            "currency": e.currency,
            "created_at": created_at,
        }
        for e, kind, created_at in rows
    ]
    totals = {
        "paid_minor": cash.paid_minor,
        "refunded_minor": cash.refunded_minor,
        "refundable_minor": cash.refundable_minor - order.reserved_minor,
        "coupon_minor": order.coupon_minor,
        "currency": order.currency,
    }
    return {
        "order_id": order_id,
        "totals": totals,
        "entries": entries,
        "total_entries": total,
        "limit": limit,
        "offset": offset,
    }


# -- requests and the automatic decision -------------------------------------------------------


def request_refund(data: RefundRequestIn, *, session: Session, env: Env) -> RefundRequest:
    """A buyer's request: reserve the amount, decide by the active policy, apply the decision.

    Raises:
        NotFound: unknown order.
        InvalidInput: the amount exceeds what is still refundable on the order (code
            ``exceeds_refundable``), or the policy refuses an input.
    """
    order = get_order_or_raise(data.order_id, session=session, lock=True)
    return apply_request(prepare_request(data, order, session=session, env=env), session=session)


class NewRequest:
    """A request being created in a deferring batch: :class:`RefundRequest`'s columns, plain."""

    def __init__(self, **columns: Any):
        self.__dict__.update(columns)


@dataclass(frozen=True)
class PreparedRequest:
    """A new request checked and decided, nothing written yet (see :func:`prepare_request`)."""

    data: RefundRequestIn
    order: Order
    reason: str
    verdict: Verdict
    env: Env
    now: datetime


def prepare_request(
    data: RefundRequestIn,
    order: Order,
    *,
    session: Session,
    env: Env,
    history: signals.BuyerHistory | None = None,
) -> PreparedRequest:
    """Everything a new request needs before it writes: the checks and the policy's verdict.

    Reads only (``order`` was read under its row lock), so a failure here leaves the
    transaction as it was and the request can be answered with its error while other work in
    the same transaction goes on (the API's batched writer relies on it).

    Raises:
        InvalidInput: the amount exceeds what is still refundable (``exceeds_refundable``), or
            the policy refuses an input.
    """
    now = env.clock.now()
    _check_refundable(order, data.requested_amount_minor)
    reason = canonical_reason(data.reason)
    verdict = _policy_verdict(
        order, reason, data.requested_amount_minor, session=session, env=env, history=history
    )
    return PreparedRequest(data, order, reason, verdict, env, now)


def apply_request(p: PreparedRequest, *, session: Session) -> RefundRequest:
    """Write a prepared request: hold its amount, append its events, apply the decision."""
    data, order, now = p.data, p.order, p.now
    # Held only now, so the order row is written once with the request (one flush fewer);
    # the order's row lock is held since it was read.
    _reserve(order, data.requested_amount_minor)
    # In a batch whose rows are written at its end, the request is a plain record (nothing
    # attaches it to the session; the ORM's attribute instrumentation cost more than building
    # it); otherwise an ORM object the session takes over once stored.
    kind = NewRequest if repo.deferring(session) else RefundRequest
    req = kind(
        id=f"rf_{uuid.uuid4().hex[:24]}",
        order_id=order.id,
        buyer_id=order.buyer_id,
        merchant_id=order.merchant_id,
        reason=p.reason,
        requested_amount_minor=data.requested_amount_minor,
        currency=order.currency,
        evidence_urls=list(data.evidence_urls),
        status=L.REQUESTED,
        decision_id=None,
        refunded_minor=0,
        payer=None,
        returned=False,
        created_at=now,
        updated_at=now,
        decided_at=None,
        last_seq=0,
    )  # every column set: attached later as loaded, an unset one would be read back
    # The new request is written by two Core statements (its row first, as events, decisions
    # and timers refer to it; its final state last) and the order's money by one: the ORM's
    # unit of work cost more than the rest of the decision's writes together. ``req`` joins
    # the session only once stored, and ``order`` is left clean (repository.store_order_money).
    repo.insert_request(session, req)
    req.__dict__[_WRITTEN] = _Written()
    _append_event(
        req,
        "requested",
        None,
        L.REQUESTED,
        actor=f"buyer:{order.buyer_id}",
        now=now,
        session=session,
    )
    with session.no_autoflush:
        _apply(req, order, p.verdict, session=session, env=p.env, now=now)
    repo.store_request_state(session, req)
    repo.store_order_money(session, order)
    repo.attach_stored(session, req)  # from here on, the session's own clean copy of the row
    return req


def _reserve(order: Order, amount_minor: int) -> None:
    _check_refundable(order, amount_minor)
    order.reserved_minor += amount_minor


def _check_refundable(order: Order, amount_minor: int) -> None:
    refundable = order.amount_minor - order.refunded_minor - order.reserved_minor
    if amount_minor > refundable:
        raise InvalidInput(
            f"requested {amount_minor} exceeds what is refundable on order {order.id}: "
            f"{refundable} of {order.amount_minor} paid ({order.refunded_minor} refunded, "
            f"{order.reserved_minor} held by open requests)",
            field="requested_amount_minor",
            code="exceeds_refundable",
        )


def decision_inputs(
    order: Order,
    reason: str,
    amount_minor: int,
    *,
    session: Session,
    env: Env,
    history: signals.BuyerHistory | None = None,
) -> dict[str, Any]:
    """The policy inputs for a new request, as stored in the decision's snapshot.

    ``history`` is the buyer's as the store holds it now (read here when not given).
    """
    now = env.clock.now()
    snap = env.norms.get(session, now)
    history = history or signals.buyer_history(order.buyer_id, session=session)
    buyer_score = signals.buyer_score(
        order.buyer_id, session=session, now=now, snap=snap, history=history
    )
    quality = signals.merchant_quality(order.merchant_id, session=session, snap=snap)
    recent, abnormal = signals.claim_pattern(
        order.buyer_id, reason, session=session, now=now, history=history
    )
    delivered = order.delivered_at is not None and order.delivered_at <= now
    return {
        "amount_minor": amount_minor,
        "currency": order.currency,
        "category": order.category,
        "reason": reason,
        "buyer_score": buyer_score,
        "merchant_score": round(float(quality.score[0]), 4),
        "defect_flag": signals.defect_flag(
            order.product_id, order.category, session=session, snap=snap
        ),
        "delivered": delivered,
        "days_since_delivery": (now - order.delivered_at).days if delivered else 0,
        "buyer_recent_claims": recent,
        "abnormal_behaviour": abnormal,
    }


def _policy_verdict(
    order: Order,
    reason: str,
    amount_minor: int,
    *,
    session: Session,
    env: Env,
    history: signals.BuyerHistory | None = None,
) -> Verdict:
    policy, arm = race_policy.deciding_policy(
        order.buyer_id, session=session, now=env.clock.now(), default=env.config.policy,
        arms=env.arms,
    )  # fmt: skip
    inputs = decision_inputs(order, reason, amount_minor, session=session, env=env, history=history)
    d = evaluate(policy, RefundInputs(**inputs))
    return Verdict(
        action=d.action,
        refund_amount_minor=d.refund_amount_minor,
        requires_return=d.requires_return,
        payer=d.payer,
        reasons=[{"code": r.code, "buyer": r.buyer, "merchant": r.merchant} for r in d.reasons],
        source="policy",
        decided_by=f"policy:{d.policy_name}",
        rule_id=d.rule_id,
        policy_name=d.policy_name,
        policy_version=d.policy_version,
        inputs=race_policy.with_race(inputs, arm),
    )


def _apply(
    req: RefundRequest, order: Order, v: Verdict, *, session: Session, env: Env, now: datetime
) -> None:
    decision_id = _record_decision(req, v, session=session, now=now)
    actor = v.decided_by
    if v.action in ("refund_only", "partial_refund"):
        amount = min(v.refund_amount_minor, req.requested_amount_minor)
        _pay(
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
        _transition(req, "require_return", actor=actor, session=session, env=env, now=now)
    elif v.action == "merchant_negotiation":
        _transition(req, "negotiate", actor=actor, session=session, env=env, now=now)
    elif v.action == "manual_review":
        _transition(req, "escalate", actor=actor, session=session, env=env, now=now)
    elif v.action == "reject":
        order.reserved_minor -= req.requested_amount_minor
        _transition(req, "reject", actor=actor, session=session, env=env, now=now)
    else:
        raise InvalidInput(f"unknown action {v.action!r}", field="action")
    req.decided_at = req.decided_at or now
    req.decision_id = decision_id


def _record_decision(req: RefundRequest, v: Verdict, *, session: Session, now: datetime) -> int:
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
    written = _written_of(req)
    if written is not None:
        written.decision = _decision_view(SimpleNamespace(**row))
    return decision_id


def _pay(
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
    _transition(
        req,
        event,
        actor=actor,
        session=session,
        env=env,
        now=now,
        data={"amount_minor": amount_minor, "payer": payer},
    )


# -- transitions -----------------------------------------------------------------------------

_WRITTEN = "_tianping_written"


@dataclass
class _Written:
    """Every event, timer and decision row of a request created in this transaction.

    The answer to a new request is built from these instead of reading the rows back.
    """

    events: list[dict[str, Any]] = field(default_factory=list)
    timers: list[dict[str, Any]] = field(default_factory=list)
    decision: dict[str, Any] | None = None


def _written_of(req: RefundRequest) -> _Written | None:
    return req.__dict__.get(_WRITTEN)


def _append_event(
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
    written = _written_of(req)
    if written is not None:
        written.events.append(row)


def _transition(
    req: RefundRequest,
    event: str,
    *,
    actor: str,
    session: Session,
    env: Env,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    """Move a request by one event: close the timer of the status it leaves, start the next."""
    before = req.status
    after = L.next_status(before, event, refund_id=req.id)
    leaving = L.timer_for(before)
    if leaving is not None and L.TIMERS[leaving][1] != event:
        timer = repo.pending_timer(session, req.id, leaving)
        if timer is not None:
            repo.close_timer(session, timer.id, state="cancelled", now=now)
            req.__dict__.pop(_WRITTEN, None)  # the journal no longer shows every row as stored
    _append_event(req, event, before, after, actor=actor, now=now, session=session, data=data)
    req.status, req.updated_at = after, now
    entering = L.timer_for(after)
    if entering is not None:
        due = now + env.config.delay(entering)
        repo.insert_timer(session, {"refund_id": req.id, "kind": entering, "due_at": due})
        written = _written_of(req)
        if written is not None:
            written.timers.append({"kind": entering, "due_at": due, "state": "pending"})


def _locked(refund_id: str, *, session: Session) -> tuple[RefundRequest, Order]:
    """The request and its order, both row-locked (order first, the one lock order used)."""
    order_id = repo.order_id_of(session, refund_id)
    if order_id is None:
        raise NotFound(f"no refund request {refund_id!r}", field="id")
    order = get_order_or_raise(order_id, session=session, lock=True)
    req = repo.get_request(session, refund_id, lock=True)
    return req, order


def _before_deadline(req: RefundRequest, *, session: Session, now: datetime) -> None:
    kind = L.timer_for(req.status)
    timer = repo.pending_timer(session, req.id, kind) if kind else None
    if timer is not None and now >= timer.due_at:
        raise Conflict(
            f"refund request {req.id}: the {L.WINDOW_NAMES[kind]} closed at "
            f"{timer.due_at.isoformat()}",
            field="status",
            code="window_closed",
        )


# -- people acting on a request ----------------------------------------------------------------


def respond_as_merchant(
    refund_id: str, data: MerchantResponseIn, *, session: Session, env: Env
) -> RefundRequest:
    """The merchant accepts (refund the requested amount) or refuses (manual review)."""
    now = env.clock.now()
    req, order = _locked(refund_id, session=session)
    L.next_status(req.status, "merchant_accepted", refund_id=req.id)
    _before_deadline(req, session=session, now=now)
    actor = f"merchant:{req.merchant_id}"
    if not data.accept:
        _transition(
            req,
            "merchant_refused",
            actor=actor,
            session=session,
            env=env,
            now=now,
            data={"note": data.note},
        )
        return req
    _merchant_refunds_in_full(
        req, order, "merchant_accepted", "merchant", "merchant_accepted",
        actor=actor, session=session, env=env, now=now,
    )  # fmt: skip
    return req


def _merchant_refunds_in_full(
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
        [_reason(reason)],
        decided_by,
        actor,
    )
    req.decision_id = _record_decision(req, v, session=session, now=now)
    req.decided_at = now
    _pay(
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


def appeal(refund_id: str, data: AppealIn, *, session: Session, env: Env) -> RefundRequest:
    """The merchant contests a paid refund within the appeal window; it joins the review queue."""
    now = env.clock.now()
    req, _order = _locked(refund_id, session=session)
    L.next_status(req.status, "appeal", refund_id=req.id)
    _before_deadline(req, session=session, now=now)
    data_out = {"reason": data.reason, "note": data.note, "evidence_urls": list(data.evidence_urls)}
    _transition(
        req,
        "appeal",
        actor=f"merchant:{req.merchant_id}",
        session=session,
        env=env,
        now=now,
        data=data_out,
    )
    return req


def return_shipped(
    refund_id: str, data: ReturnShippedIn, *, session: Session, env: Env
) -> RefundRequest:
    """The buyer sent the goods back."""
    now = env.clock.now()
    req, _order = _locked(refund_id, session=session)
    L.next_status(req.status, "return_shipped", refund_id=req.id)
    _before_deadline(req, session=session, now=now)
    actor = f"buyer:{req.buyer_id}"
    _transition(
        req,
        "return_shipped",
        actor=actor,
        session=session,
        env=env,
        now=now,
        data={"tracking_number": data.tracking_number},
    )
    return req


def return_received(
    refund_id: str, data: ReturnReceivedIn, *, session: Session, env: Env
) -> RefundRequest:
    """The merchant confirms the goods came back: the decided refund is paid."""
    now = env.clock.now()
    req, order = _locked(refund_id, session=session)
    actor = f"merchant:{req.merchant_id}"
    if req.status == L.AWAITING_RETURN:
        _before_deadline(req, session=session, now=now)
        _transition(
            req,
            "return_shipped",
            actor=actor,
            session=session,
            env=env,
            now=now,
            data={"note": "received without shipment notice"},
        )
    L.next_status(req.status, "return_received", refund_id=req.id)
    _receive(req, order, "return_received", actor=actor, session=session, env=env, now=now)
    return req


def _receive(
    req: RefundRequest,
    order: Order,
    event: str,
    *,
    actor: str,
    session: Session,
    env: Env,
    now: datetime,
) -> None:
    decision = repo.get_decision(session, req.decision_id)
    amount = min(decision.refund_amount_minor, req.requested_amount_minor)
    req.returned = True
    _pay(
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


def review_queue(*, session: Session, limit: int, offset: int) -> tuple[list[RefundRequest], int]:
    """Requests waiting for a person (manual review and merchant appeals), oldest first."""
    return repo.queue(session, sorted(L.IN_QUEUE), limit=limit, offset=offset)


def review(
    refund_id: str, data: ReviewIn, *, reviewer: str, session: Session, env: Env
) -> RefundRequest:
    """``reviewer`` (the signed-in key's holder) decides a queued request or an appeal."""
    now = env.clock.now()
    req, order = _locked(refund_id, session=session)
    if req.status not in L.IN_QUEUE:
        raise Conflict(
            f"refund request {req.id} is {req.status}, not waiting for review", field="status"
        )
    actor = f"reviewer:{reviewer}"
    if req.status == L.APPEALED:
        _decide_appeal(req, order, data, actor=actor, session=session, env=env, now=now)
        return req
    if data.action in ("uphold_appeal", "dismiss_appeal"):
        raise InvalidInput(f"refund request {req.id} has no appeal to decide", field="action")
    v = _review_verdict(req, data, actor)
    _apply(req, order, v, session=session, env=env, now=now)
    return req


def _review_verdict(req: RefundRequest, data: ReviewIn, actor: str) -> Verdict:
    amount = 0
    if data.action != "reject":
        amount = (
            req.requested_amount_minor
            if data.refund_amount_minor is None
            else data.refund_amount_minor
        )
        if amount > req.requested_amount_minor:
            raise InvalidInput(
                f"refund_amount_minor {amount} exceeds the {req.requested_amount_minor} requested",
                field="refund_amount_minor",
            )
    payer = None if data.action == "reject" else (data.payer or "merchant")
    return Verdict(
        data.action,
        amount,
        data.action == "return_and_refund",
        payer,
        [_reason(f"review_{data.action}", data.note)],
        "reviewer",
        actor,
    )


def _decide_appeal(
    req: RefundRequest,
    order: Order,
    data: ReviewIn,
    *,
    actor: str,
    session: Session,
    env: Env,
    now: datetime,
) -> None:
    if data.action == "dismiss_appeal":
        _transition(
            req,
            "appeal_dismissed",
            actor=actor,
            session=session,
            env=env,
            now=now,
            data={"note": data.note},
        )
        return
    if data.action != "uphold_appeal":
        raise InvalidInput(
            f"refund request {req.id} is appealed: uphold_appeal or dismiss_appeal", field="action"
        )
    if req.payer == "merchant" and req.refunded_minor > 0:
        # The buyer keeps the refund; the platform pays it instead of the merchant.
        ledger.reverse(f"refund:{req.id}", session=session, now=now, memo="merchant appeal upheld")
        draft = P.refund(
            f"refund:{req.id}:platform",
            order_id=order.id,
            buyer_id=order.buyer_id,
            cash_minor=req.refunded_minor,
            packet_share_minor=0,
            payer="platform",
            currency=order.currency,
        )
        ledger.post(draft, session=session, now=now)
        req.payer = "platform"
    _transition(
        req,
        "appeal_upheld",
        actor=actor,
        session=session,
        env=env,
        now=now,
        data={"note": data.note},
    )


def _reason(code: str, note: str = "") -> dict[str, str]:
    return {"code": code, "buyer": note, "merchant": note}


# -- SLA timers --------------------------------------------------------------------------------


def tick(*, session: Session, env: Env, limit: int = 1000) -> dict[str, int]:
    """Fire every SLA timer due by now, each exactly once, and lapse expired unspent packets.

    Safe to run concurrently: a timer fires only in the transaction whose conditional
    ``pending → fired`` update succeeds, under the order's and request's row locks.
    """
    now = env.clock.now()
    fired = 0
    for timer_id, refund_id, kind in repo.due_timers(session, now, limit):
        req, order = _locked(refund_id, session=session)
        guarded, event = L.TIMERS[kind]
        req.__dict__.pop(_WRITTEN, None)  # its timer changes here, not through the journal
        if req.status != guarded:
            repo.close_timer(session, timer_id, state="cancelled", now=now)
            continue
        if not repo.close_timer(session, timer_id, state="fired", now=now):
            continue
        _fire(req, order, kind, event, session=session, env=env, now=now)
        fired += 1
    expired = coupons.expire_due(session=session, now=now, limit=limit)
    return {"timers_fired": fired, "coupons_expired": expired}


def _fire(
    req: RefundRequest,
    order: Order,
    kind: str,
    event: str,
    *,
    session: Session,
    env: Env,
    now: datetime,
) -> None:
    actor = f"timer:{kind}"
    if kind == "merchant_response":
        hours = int(env.config.merchant_response.total_seconds() // 3600)
        _merchant_refunds_in_full(
            req, order, f"merchant_silent_{hours}h", "sla", event,
            actor=actor, session=session, env=env, now=now,
        )  # fmt: skip
    elif kind == "return_receipt":
        _receive(req, order, event, actor=actor, session=session, env=env, now=now)
    elif kind == "return_shipment":
        order.reserved_minor -= req.requested_amount_minor
        _transition(req, event, actor=actor, session=session, env=env, now=now)
    else:
        _transition(req, event, actor=actor, session=session, env=env, now=now)


# -- reading ---------------------------------------------------------------------------------


def get_or_raise(refund_id: str, *, session: Session) -> RefundRequest:
    req = repo.get_request(session, refund_id)
    if req is None:
        raise NotFound(f"no refund request {refund_id!r}", field="id")
    return req


def view(req: RefundRequest, *, session: Session) -> dict[str, Any]:
    """The request as the API shows it: status, current decision, events and timers."""
    # The journal answers once, right after the request was made; any later view (the same
    # object may live on in the session while timers fire) reads the rows.
    written = req.__dict__.pop(_WRITTEN, None)
    if written is not None:
        return _request_view(req, written.decision, written.events, written.timers)
    decision = repo.get_decision(session, req.decision_id) if req.decision_id else None
    events = [
        {
            "seq": e.seq,
            "event": e.event,
            "from_status": e.from_status,
            "to_status": e.to_status,
            "actor": e.actor,
            "at": e.at,
            "data": e.data,
        }
        for e in repo.events_of(session, req.id)
    ]
    timers = [
        {"kind": t.kind, "due_at": t.due_at, "state": t.state}
        for t in repo.timers_of(session, req.id)
    ]
    return _request_view(req, _decision_view(decision) if decision else None, events, timers)


def _request_view(req: RefundRequest, decision, events, timers) -> dict[str, Any]:
    return {
        "id": req.id,
        "order_id": req.order_id,
        "buyer_id": req.buyer_id,
        "merchant_id": req.merchant_id,
        "status": req.status,
        "reason": req.reason,
        "requested_amount_minor": req.requested_amount_minor,
        "refunded_amount_minor": req.refunded_minor,
        "currency": req.currency,
        "payer": req.payer,
        "returned": req.returned,
        "evidence_urls": list(req.evidence_urls or []),
        "created_at": req.created_at,
        "updated_at": req.updated_at,
        "decision": decision,
        "events": events,
        "timers": timers,
    }


def _decision_view(d) -> dict[str, Any]:
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


# -- scores ----------------------------------------------------------------------------------


def buyer_credit(buyer_id: str, *, session: Session, env: Env) -> dict[str, Any]:
    """The buyer's credit score (350–950) from their orders and requests, explained."""
    now = env.clock.now()
    scores = signals.buyer_credit(
        buyer_id, session=session, now=now, snap=env.norms.get(session, now)
    )
    lines = [
        {"name": f.name, "value": f.value, "band": f.band, "points": f.points, "reason": f.reason}
        for f in scores.explain(0)
    ]
    return {"buyer_id": buyer_id, "score": int(scores.score[0]), "lines": lines}


def merchant_quality(merchant_id: str, *, session: Session, env: Env) -> dict[str, Any]:
    """The merchant's quality score (0–5) from its orders and refund requests, per component."""
    if not repo.merchant_order_counts(session, merchant_id):
        raise NotFound(f"no orders recorded for merchant {merchant_id!r}", field="merchant_id")
    now = env.clock.now()
    q = signals.merchant_quality(merchant_id, session=session, snap=env.norms.get(session, now))
    components = [
        {
            "name": c.name,
            "value": _finite(c.value),
            "n": c.n,
            "sub_score": _finite(c.sub_score),
            "weight": c.weight,
            "platform": _finite(c.platform),
        }
        for c in q.explain(0)
    ]
    return {
        "merchant_id": merchant_id,
        "score": round(float(q.score[0]), 4),
        "components": components,
    }


def _finite(x: float) -> float | None:
    return None if x != x else x  # NaN → None for JSON


# -- audit and replay --------------------------------------------------------------------------


def audit(*, session: Session) -> list[P.Violation]:
    """Ledger rules plus: each order row's refunded cash equals its ledger and stays within paid."""
    found = ledger.check(session=session)
    for order_id, paid, refunded in repo.order_totals(session):
        cash = ledger.order_cash(order_id, session=session)
        if refunded != cash.refunded_minor or (paid > 0 and paid != cash.paid_minor):
            found.append(
                P.Violation(
                    "order_matches_ledger",
                    order_id,
                    f"order row paid {paid} refunded {refunded}; ledger paid {cash.paid_minor} "
                    f"refunded {cash.refunded_minor}",
                )
            )
    return found


def ledger_summary(*, session: Session) -> dict[str, int]:
    """How much the audit looked at: transfers, entries and orders."""
    return {**ledger.summary(session=session), "orders": len(repo.order_totals(session))}


@dataclass(frozen=True)
class ReplayResult:
    checked: int
    mismatches: list[dict[str, Any]]


def replay(*, session: Session, limit: int = 10_000, offset: int = 0) -> ReplayResult:
    """Re-evaluate stored policy decisions with their stored inputs and policy versions."""
    decisions = repo.decisions_by_policy(session, limit=limit, offset=offset)
    mismatches = []
    for d in decisions:
        policy = policies.by_version(d.policy_version, session=session)
        again = evaluate(policy, RefundInputs.from_mapping(race_policy.policy_inputs(d.inputs)))
        stored = (
            d.action,
            d.refund_amount_minor,
            d.requires_return,
            d.payer or None,
            d.rule_id,
            [r["code"] for r in d.reasons],
        )
        fresh = (
            again.action,
            again.refund_amount_minor,
            again.requires_return,
            again.payer,
            again.rule_id,
            [r.code for r in again.reasons],
        )
        if stored != fresh:
            mismatches.append(
                {"decision_id": d.id, "refund_id": d.refund_id, "stored": stored, "replayed": fresh}
            )
    return ReplayResult(len(decisions), mismatches)
