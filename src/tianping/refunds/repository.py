"""Every query the refund lifecycle makes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Row, bindparam, case, func, insert, select, update
from sqlalchemy.orm import Session

from tianping.governance import audit
from tianping.refunds.models import (
    Order,
    PolicyActivation,
    RefundDecision,
    RefundEvent,
    RefundRequest,
    RefundTimer,
    StoredPolicy,
)

# Statements on the decision path are built once (bound parameters), so a request pays
# neither their construction nor their cache-key computation.
_ORDER = select(Order).where(Order.id == bindparam("id"))
_ORDER_LOCKED = _ORDER.with_for_update().execution_options(populate_existing=True)


def get_order(session: Session, order_id: str, *, lock: bool = False) -> Order | None:
    stmt = _ORDER_LOCKED if lock else _ORDER
    return session.execute(stmt, {"id": order_id}).scalar_one_or_none()


def get_request(session: Session, refund_id: str, *, lock: bool = False) -> RefundRequest | None:
    stmt = select(RefundRequest).where(RefundRequest.id == refund_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.execute(stmt).scalar_one_or_none()


def order_id_of(session: Session, refund_id: str) -> str | None:
    stmt = select(RefundRequest.order_id).where(RefundRequest.id == refund_id)
    return session.execute(stmt).scalar_one_or_none()


def events_of(session: Session, refund_id: str) -> list[RefundEvent]:
    stmt = select(RefundEvent).where(RefundEvent.refund_id == refund_id).order_by(RefundEvent.seq)
    return list(session.execute(stmt).scalars())


def decisions_of(session: Session, refund_id: str) -> list[RefundDecision]:
    stmt = (
        select(RefundDecision)
        .where(RefundDecision.refund_id == refund_id)
        .order_by(RefundDecision.id)
    )
    return list(session.execute(stmt).scalars())


def insert_event(session: Session, row: dict) -> None:
    """Append an event row (Core INSERT: events are never changed, no ORM bookkeeping).

    Every event is a state change of its request, so it is queued for the audit log too
    (written at commit with the transaction's other entries, in one INSERT).
    """
    session.connection().execute(insert(RefundEvent.__table__), row)
    detail = {"seq": row["seq"], "from": row["from_status"], "to": row["to_status"]}
    if row["data"]:
        detail["data"] = row["data"]
    audit.later(f"refund.{row['event']}", subject=f"refund:{row['refund_id']}",
                actor=row["actor"], now=row["at"], detail=detail, session=session)  # fmt: skip


def insert_timer(session: Session, row: dict) -> None:
    session.connection().execute(insert(RefundTimer.__table__).values(state="pending"), row)


def insert_decision(session: Session, row: dict) -> int:
    """Append a decision row; returns its id."""
    stmt = insert(RefundDecision.__table__).returning(RefundDecision.__table__.c.id)
    return session.connection().execute(stmt, row).scalar_one()


def get_decision(session: Session, decision_id: int) -> RefundDecision | None:
    return session.get(RefundDecision, decision_id)


def timers_of(session: Session, refund_id: str) -> list[RefundTimer]:
    stmt = select(RefundTimer).where(RefundTimer.refund_id == refund_id).order_by(RefundTimer.id)
    return list(session.execute(stmt).scalars())


def pending_timer(session: Session, refund_id: str, kind: str) -> RefundTimer | None:
    stmt = select(RefundTimer).where(
        RefundTimer.refund_id == refund_id, RefundTimer.kind == kind, RefundTimer.state == "pending"
    )
    return session.execute(stmt).scalar_one_or_none()


def close_timer(session: Session, timer_id: int, *, state: str, now: datetime) -> bool:
    """Move a timer out of ``pending`` once: False when another transaction already did."""
    stmt = (
        update(RefundTimer)
        .where(RefundTimer.id == timer_id, RefundTimer.state == "pending")
        .values(state=state, closed_at=now)
    )
    return session.execute(stmt).rowcount == 1


def due_timers(session: Session, now: datetime, limit: int) -> list[tuple[int, str, str]]:
    """``(timer id, refund id, kind)`` of pending timers due by ``now``, oldest first."""
    stmt = (
        select(RefundTimer.id, RefundTimer.refund_id, RefundTimer.kind)
        .where(RefundTimer.state == "pending", RefundTimer.due_at <= now)
        .order_by(RefundTimer.due_at, RefundTimer.id)
        .limit(limit)
    )
    return [tuple(r) for r in session.execute(stmt)]


def queue(
    session: Session, statuses, *, limit: int, offset: int
) -> tuple[list[RefundRequest], int]:
    base = select(RefundRequest).where(RefundRequest.status.in_(statuses))
    total = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = session.execute(
        base.order_by(RefundRequest.updated_at, RefundRequest.id).limit(limit).offset(offset)
    ).scalars()
    return list(rows), int(total)


# -- policies --------------------------------------------------------------------------------


_ACTIVE_VERSION = select(PolicyActivation.version).order_by(PolicyActivation.id.desc()).limit(1)


def active_policy_version(session: Session) -> str | None:
    return session.execute(_ACTIVE_VERSION).scalar_one_or_none()


def get_policy(session: Session, version: str) -> StoredPolicy | None:
    return session.get(StoredPolicy, version)


def decisions_by_policy(session: Session, *, limit: int, offset: int) -> list[RefundDecision]:
    stmt = (
        select(RefundDecision)
        .where(RefundDecision.source == "policy")
        .order_by(RefundDecision.id)
        .limit(limit)
        .offset(offset)
    )
    return list(session.execute(stmt).scalars())


# -- history the scores read ---------------------------------------------------------------


_BUYER_ORDERS = (
    select(
        Order.category,
        func.count(Order.id),
        func.coalesce(func.sum(Order.amount_minor), 0),
        func.min(Order.paid_at),
    )
    .where(Order.buyer_id == bindparam("buyer"))
    .group_by(Order.category)
)
_UPHELD = (
    select(func.count(RefundEvent.id))
    .where(RefundEvent.refund_id == RefundRequest.id, RefundEvent.event == "appeal_upheld")
    .correlate(RefundRequest)
    .scalar_subquery()
)
_BUYER_REQUESTS = select(
    RefundRequest.id,
    RefundRequest.created_at,
    RefundRequest.reason,
    RefundRequest.refunded_minor,
    RefundRequest.returned,
    _UPHELD.label("appeals_upheld"),
).where(RefundRequest.buyer_id == bindparam("buyer"))


def buyer_orders_by_category(session: Session, buyer_id: str) -> list[Row]:
    """``(category, orders, spend, first paid_at)`` of the buyer's orders, one row per category."""
    return list(session.execute(_BUYER_ORDERS, {"buyer": buyer_id}))


def buyer_requests(session: Session, buyer_id: str) -> list[Row]:
    """The buyer's requests: when, why, whether money went back without a return, and how
    many merchant appeals against each were upheld (one query)."""
    return list(session.execute(_BUYER_REQUESTS, {"buyer": buyer_id}))


def category_rates(session: Session) -> list[tuple[str, int, int, int]]:
    """``(category, orders, requests, refund-only requests)`` over the whole store."""
    requests = (
        select(
            RefundRequest.order_id,
            func.count(RefundRequest.id).label("n"),
            func.sum(
                case(((RefundRequest.refunded_minor > 0) & ~RefundRequest.returned, 1), else_=0)
            ).label("ro"),
        )
        .group_by(RefundRequest.order_id)
        .subquery()
    )
    stmt = (
        select(
            Order.category,
            func.count(Order.id),
            func.coalesce(func.sum(requests.c.n), 0),
            func.coalesce(func.sum(requests.c.ro), 0),
        )
        .outerjoin(requests, requests.c.order_id == Order.id)
        .group_by(Order.category)
    )
    return [(c, int(o), int(n), int(r)) for c, o, n, r in session.execute(stmt)]


def merchant_order_counts(
    session: Session, merchant_id: str | None = None
) -> list[tuple[str, int]]:
    stmt = select(Order.merchant_id, func.count(Order.id)).group_by(Order.merchant_id)
    if merchant_id is not None:
        stmt = stmt.where(Order.merchant_id == merchant_id)
    return [(m, int(n)) for m, n in session.execute(stmt)]


def merchant_requests(session: Session, merchant_id: str | None = None) -> list[Row]:
    """``(merchant, reason, created_at, decided_at)`` of refund requests."""
    stmt = select(
        RefundRequest.merchant_id,
        RefundRequest.reason,
        RefundRequest.created_at,
        RefundRequest.decided_at,
    )
    if merchant_id is not None:
        stmt = stmt.where(RefundRequest.merchant_id == merchant_id)
    return list(session.execute(stmt))


def product_counts(
    session: Session, reasons, product_id: str | None = None
) -> list[tuple[str, str, int, int]]:
    """``(product, category, orders, orders with a quality-reason request)`` per product."""
    if product_id is not None:
        return _one_product_counts(session, reasons, product_id)
    quality = (
        select(RefundRequest.order_id)
        .where(RefundRequest.reason.in_(sorted(reasons)))
        .distinct()
        .subquery()
    )
    stmt = (
        select(
            Order.product_id,
            Order.category,
            func.count(Order.id),
            func.count(quality.c.order_id),
        )
        .outerjoin(quality, quality.c.order_id == Order.id)
        .group_by(Order.product_id, Order.category)
    )
    return [(p, c, int(o), int(q)) for p, c, o, q in session.execute(stmt)]


_PRODUCT_COUNTS = (
    select(
        Order.product_id,
        Order.category,
        func.count(func.distinct(Order.id)),
        func.count(func.distinct(RefundRequest.order_id)),
    )
    .outerjoin(
        RefundRequest,
        (RefundRequest.order_id == Order.id)
        & RefundRequest.reason.in_(bindparam("reasons", expanding=True)),
    )
    .where(Order.product_id == bindparam("product"))
    .group_by(Order.product_id, Order.category)
)


def _one_product_counts(session: Session, reasons, product_id: str) -> list:
    # Only this product's orders and their requests: index lookups, not a scan of all requests.
    rows = session.execute(_PRODUCT_COUNTS, {"reasons": sorted(reasons), "product": product_id})
    return [(p, c, int(o), int(q)) for p, c, o, q in rows]


def export_rows(session: Session, statuses, *, after: str | None, limit: int) -> list[Row]:
    stmt = (
        select(
            RefundRequest.id,
            RefundRequest.order_id,
            RefundRequest.created_at,
            RefundRequest.reason,
            RefundRequest.requested_amount_minor,
            RefundRequest.currency,
            RefundRequest.refunded_minor,
            RefundRequest.returned,
            RefundRequest.decided_at,
            RefundDecision.action,
        )
        .outerjoin(RefundDecision, RefundDecision.id == RefundRequest.decision_id)
        .where(RefundRequest.status.in_(sorted(statuses)))
        .order_by(RefundRequest.id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(RefundRequest.id > after)
    return list(session.execute(stmt))


def order_totals(session: Session) -> list[Row]:
    """``(order, cash paid, refunded)`` as the order rows keep them."""
    stmt = select(Order.id, Order.amount_minor, Order.refunded_minor)
    return list(session.execute(stmt))
