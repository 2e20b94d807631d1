"""The refund lifecycle's requests: a new request and its automatic decision, the people who
act on it (merchant, buyer, reviewer) and how it reads. They take ``*, session`` and never
commit.

Money moves only under the order's row lock (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite
takes the write lock at ``BEGIN IMMEDIATE``): a request first reserves its amount against
``paid − refunded − reserved``, and the database refuses an order row whose refunded plus
reserved cash exceeds what was paid. Orders are :mod:`~tianping.refunds.orders`, the moves
shared with the timers :mod:`~tianping.refunds.transitions`, the timers
:mod:`~tianping.refunds.timers`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tianping.aftersales.policy import RefundInputs, evaluate
from tianping.aftersales.vocabulary import canonical_reason
from tianping.errors import Conflict, InvalidInput, NotFound
from tianping.ledger import service as ledger
from tianping.refunds import evidence, race_policy, signals
from tianping.refunds import lifecycle as L
from tianping.refunds import repository as repo
from tianping.refunds import transitions as T
from tianping.refunds.env import Env
from tianping.refunds.evidence import EvidenceIn
from tianping.refunds.evidence import policy_inputs as evidence_inputs
from tianping.refunds.models import Order, RefundRequest
from tianping.refunds.orders import get_order_or_raise
from tianping.refunds.schemas import (
    AppealIn,
    MerchantResponseIn,
    RefundRequestIn,
    ReturnReceivedIn,
    ReturnShippedIn,
    ReviewIn,
)
from tianping.refunds.transitions import Verdict

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
        order, reason, data.requested_amount_minor, session=session, env=env, history=history,
        evidence=data.evidence,
    )  # fmt: skip
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
    req.__dict__[T.WRITTEN] = T.Written()
    T.append_event(
        req,
        "requested",
        None,
        L.REQUESTED,
        actor=f"buyer:{order.buyer_id}",
        now=now,
        session=session,
        data={"evidence": evidence.stored(data.evidence)} if data.evidence else None,
    )
    with session.no_autoflush:
        T.apply_verdict(req, order, p.verdict, session=session, env=p.env, now=now)
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
        # the buyer's abuse ring as of the references' snapshot (absent: linked to no one)
        **signals.ring_inputs(order.buyer_id, snap),
    }


def _policy_verdict(
    order: Order,
    reason: str,
    amount_minor: int,
    *,
    session: Session,
    env: Env,
    history: signals.BuyerHistory | None = None,
    evidence: Sequence[EvidenceIn] = (),
) -> Verdict:
    policy, arm = race_policy.deciding_policy(
        order.buyer_id, session=session, now=env.clock.now(), default=env.config.policy,
        arms=env.arms,
    )  # fmt: skip
    inputs = decision_inputs(order, reason, amount_minor, session=session, env=env, history=history)
    inputs.update(evidence_inputs(evidence))
    d = evaluate(policy, RefundInputs(**inputs))
    sla = None
    if d.action == "merchant_negotiation" and policy.negotiation is not None:
        sla = timedelta(hours=policy.negotiation.sla_hours)
    return Verdict(
        action=d.action,
        refund_amount_minor=d.refund_amount_minor,
        requires_return=d.requires_return,
        payer=d.payer,
        reasons=[{"code": r.code, "buyer": r.buyer, "merchant": r.merchant} for r in d.reasons]
        + _ring_citation(d.ring_reason),
        source="policy",
        decided_by=f"policy:{d.policy_name}",
        rule_id=d.rule_id,
        policy_name=d.policy_name,
        policy_version=d.policy_version,
        inputs=race_policy.with_race(inputs, arm),
        negotiation_sla=sla,
    )


def _ring_citation(ring_reason: str) -> list[dict[str, str]]:
    """When the rule that fired tested the buyer's ring, the shared values it rests on, for the
    merchant and the reviewer (the buyer is told the policy's own reason only)."""
    if not ring_reason:
        return []
    return [{"code": "ring_links", "buyer": "", "merchant": f"The buyer {ring_reason}."}]


# -- people acting on a request ----------------------------------------------------------------


def respond_as_merchant(
    refund_id: str, data: MerchantResponseIn, *, session: Session, env: Env
) -> RefundRequest:
    """The merchant accepts (refund the requested amount) or refuses (manual review)."""
    now = env.clock.now()
    req, order = T.locked(refund_id, session=session)
    L.next_status(req.status, "merchant_accepted", refund_id=req.id)
    T.before_deadline(req, session=session, now=now)
    actor = f"merchant:{req.merchant_id}"
    if not data.accept:
        T.transition(
            req,
            "merchant_refused",
            actor=actor,
            session=session,
            env=env,
            now=now,
            data={"note": data.note},
        )
        return req
    T.merchant_refunds_in_full(
        req, order, "merchant_accepted", "merchant", "merchant_accepted",
        actor=actor, session=session, env=env, now=now,
    )  # fmt: skip
    return req


def appeal(refund_id: str, data: AppealIn, *, session: Session, env: Env) -> RefundRequest:
    """The merchant contests a paid refund within the appeal window; it joins the review queue."""
    now = env.clock.now()
    req, _order = T.locked(refund_id, session=session)
    L.next_status(req.status, "appeal", refund_id=req.id)
    T.before_deadline(req, session=session, now=now)
    data_out = {"reason": data.reason, "note": data.note, "evidence_urls": list(data.evidence_urls)}
    if data.evidence:
        data_out["evidence"] = evidence.stored(data.evidence)
    T.transition(
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
    req, _order = T.locked(refund_id, session=session)
    L.next_status(req.status, "return_shipped", refund_id=req.id)
    T.before_deadline(req, session=session, now=now)
    actor = f"buyer:{req.buyer_id}"
    T.transition(
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
    req, order = T.locked(refund_id, session=session)
    actor = f"merchant:{req.merchant_id}"
    if req.status == L.AWAITING_RETURN:
        T.before_deadline(req, session=session, now=now)
        T.transition(
            req,
            "return_shipped",
            actor=actor,
            session=session,
            env=env,
            now=now,
            data={"note": "received without shipment notice"},
        )
    L.next_status(req.status, "return_received", refund_id=req.id)
    T.receive(req, order, "return_received", actor=actor, session=session, env=env, now=now)
    return req


def review_queue(*, session: Session, limit: int, offset: int) -> tuple[list[RefundRequest], int]:
    """Requests waiting for a person (manual review and merchant appeals), oldest first."""
    return repo.queue(session, sorted(L.IN_QUEUE), limit=limit, offset=offset)


def review(
    refund_id: str, data: ReviewIn, *, reviewer: str, session: Session, env: Env
) -> RefundRequest:
    """``reviewer`` (the signed-in key's holder) decides a queued request or an appeal."""
    now = env.clock.now()
    req, order = T.locked(refund_id, session=session)
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
    T.apply_verdict(req, order, v, session=session, env=env, now=now)
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
        [T.reason_entry(f"review_{data.action}", data.note)],
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
        T.transition(
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
    paid_by_fund = 0
    if req.payer == "merchant" and req.refunded_minor > 0:
        # The buyer keeps the refund; the merchant protection fund pays it in the merchant's
        # place (refused, with nothing written, when the fund cannot cover it).
        ledger.fund_pay(
            req.id, order_id=order.id, buyer_id=order.buyer_id, amount_minor=req.refunded_minor,
            currency=order.currency, session=session, now=now,
        )  # fmt: skip
        ledger.reverse(f"refund:{req.id}", session=session, now=now, memo="merchant appeal upheld")
        req.payer, paid_by_fund = "platform", req.refunded_minor
    T.transition(
        req,
        "appeal_upheld",
        actor=actor,
        session=session,
        env=env,
        now=now,
        data={"note": data.note, "fund_payout_minor": paid_by_fund},
    )


# -- reading ---------------------------------------------------------------------------------


def get_or_raise(refund_id: str, *, session: Session) -> RefundRequest:
    """The request ``refund_id``; :class:`NotFound` when there is none."""
    req = repo.get_request(session, refund_id)
    if req is None:
        raise NotFound(f"no refund request {refund_id!r}", field="id")
    return req


def view(req: RefundRequest, *, session: Session) -> dict[str, Any]:
    """The request as the API shows it: status, current decision, events and timers."""
    # The journal answers once, right after the request was made; any later view (the same
    # object may live on in the session while timers fire) reads the rows.
    written = req.__dict__.pop(T.WRITTEN, None)
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
    return _request_view(req, T.decision_view(decision) if decision else None, events, timers)


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


def appeal_outcomes(*, session: Session) -> dict[str, bool]:
    """Decided merchant appeals by refund id: True when upheld (the claim was abuse), False when
    dismissed (it was honest) — what the two-sided error report is judged by where no ground
    truth exists (:mod:`tianping.aftersales.two_sided`)."""
    return repo.appeal_outcomes(session)
