"""The lifecycle's SLA timers: a merchant who does not answer in time refunds in full, a return
not confirmed in time counts as received, a window that closes closes the request."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tianping.coupons import service as coupons
from tianping.refunds import lifecycle as L
from tianping.refunds import negotiation
from tianping.refunds import repository as repo
from tianping.refunds import transitions as T
from tianping.refunds.env import Env
from tianping.refunds.models import Order, RefundRequest

# -- SLA timers --------------------------------------------------------------------------------


def tick(*, session: Session, env: Env, limit: int = 1000) -> dict[str, int]:
    """Fire every SLA timer due by now, each exactly once, and lapse expired unspent packets.

    Safe to run concurrently: a timer fires only in the transaction whose conditional
    ``pending → fired`` update succeeds, under the order's and request's row locks.
    """
    now = env.clock.now()
    fired = 0
    for timer_id, refund_id, kind in repo.due_timers(session, now, limit):
        req, order = T.locked(refund_id, session=session)
        guarded, event = L.TIMERS[kind]
        req.__dict__.pop(T.WRITTEN, None)  # its timer changes here, not through the journal
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
    if kind == "merchant_response" and negotiation.platform_decides(
        req, order, actor=actor, session=session, env=env, now=now
    ):
        return
    if kind == "merchant_response":
        hours = int(env.config.merchant_response.total_seconds() // 3600)
        T.merchant_refunds_in_full(
            req, order, f"merchant_silent_{hours}h", "sla", event,
            actor=actor, session=session, env=env, now=now,
        )  # fmt: skip
    elif kind == "return_receipt":
        T.receive(req, order, event, actor=actor, session=session, env=env, now=now)
    elif kind == "return_shipment":
        order.reserved_minor -= req.requested_amount_minor
        T.transition(req, event, actor=actor, session=session, env=env, now=now)
    else:
        T.transition(req, event, actor=actor, session=session, env=env, now=now)
