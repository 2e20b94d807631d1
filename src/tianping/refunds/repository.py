"""Every query the refund lifecycle makes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Row, bindparam, case, func, insert, inspect, select, update
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from tianping.audit import log as audit
from tianping.refunds.models import (
    Order,
    PolicyActivation,
    RefundDecision,
    RefundEvent,
    RefundRequest,
    RefundTimer,
    StoredPolicy,
)
from tianping.store import deferred
from tianping.store.db import core_execute

# Statements on the decision path are built once (bound parameters), so a request pays
# neither their construction nor their cache-key computation.
_ORDER = select(Order).where(Order.id == bindparam("id"))
_ORDER_LOCKED = _ORDER.with_for_update().execution_options(populate_existing=True)


def get_order(session: Session, order_id: str, *, lock: bool = False) -> Order | None:
    """The order ``order_id`` (``lock``: under its row lock, where money moves), or None."""
    stmt = _ORDER_LOCKED if lock else _ORDER
    return session.execute(stmt, {"id": order_id}).scalar_one_or_none()


_REQUESTS = RefundRequest.__table__
_INSERT_REQUEST = insert(_REQUESTS)
#: The columns of a request that change after it is created.
_STATE = ("status", "decision_id", "refunded_minor", "payer", "returned", "updated_at",
          "decided_at", "last_seq")  # fmt: skip
_UPDATE_STATE = (
    update(_REQUESTS)
    .where(_REQUESTS.c.id == bindparam("rid"))
    .values({c: bindparam(c) for c in _STATE})
)
_MONEY = frozenset({"reserved_minor", "refunded_minor"})
_UPDATE_MONEY = (
    update(Order.__table__)
    .where(Order.__table__.c.id == bindparam("oid"))
    .values(reserved_minor=bindparam("reserved"), refunded_minor=bindparam("refunded"))
)


# -- deferred writes ---------------------------------------------------------------------------
#
# The API's batched writer decides many new requests in one transaction. Their rows (request,
# decision, events, timers, idempotency record) are appended to a buffer and written at the
# end of the batch with one executemany per table, in foreign-key order. Nothing read later in
# the same batch needs them from the database: the buyer's history and the idempotency
# records are kept current in memory by the batch, a new request leaves no timer to close, and
# ledger postings, coupons and order rows are still written at once.

_DEFER = "tianping.deferred_writes"


@dataclass
class Deferred:
    """Rows waiting to be written before the transaction commits."""

    txn: object
    requests: list[RefundRequest] = field(default_factory=list)
    decisions: list[dict] = field(default_factory=list)
    written: set[str] = field(default_factory=set)  # requests already inserted by a flush


def start_deferring(session: Session) -> Deferred:
    """Buffer this transaction's new-request rows until :func:`write_deferred`."""
    d = session.info[_DEFER] = Deferred(session.get_transaction())
    deferred.start(session)
    return d


def deferring(session: Session) -> bool:
    """Whether this transaction's new-request rows are being buffered."""
    return _deferred(session) is not None


def _deferred(session: Session) -> Deferred | None:
    d = session.info.get(_DEFER)
    return d if d is not None and d.txn is session.get_transaction() else None


def write_deferred(session: Session) -> None:
    """Write the buffered rows and stop buffering (the batch's last step before commit)."""
    d = _deferred(session)
    session.info.pop(_DEFER, None)
    if d is not None:
        _write(session, d)
    deferred.write(session, stop=True)


def write_buffered(session: Session) -> None:
    """Write what is buffered so far and go on buffering.

    Called first by every read that scans the platform's rows (the references, a merchant's or
    a product's history), so it sees the batch's earlier requests as one transaction per
    request would.
    """
    d = _deferred(session)
    if d is not None:
        _write(session, d)
        deferred.write(session)


def _write(session: Session, d: Deferred) -> None:
    """Requests, then decisions (and the requests' decision ids); the rows that refer to them
    (:mod:`tianping.store.deferred`) are written after."""
    conn = session.connection()
    requests, decisions = d.requests, d.decisions
    d.requests, d.decisions = [], []
    if requests:
        conn.execute(_INSERT_REQUEST, [_request_row(r) for r in requests])
        d.written.update(r.id for r in requests)
    if decisions:
        stmt = insert(RefundDecision.__table__).returning(
            RefundDecision.__table__.c.id, sort_by_parameter_order=True
        )
        ids = [row[0] for row in conn.execute(stmt, decisions)]
        by_request = {r.id: r for r in requests}
        links = []
        for decision_id, row in zip(ids, decisions, strict=True):
            links.append({"rid": row["refund_id"], "did": decision_id})
            req = by_request.get(row["refund_id"])
            if req is not None and req.decision_id is None:
                if isinstance(req, RefundRequest):
                    set_committed_value(req, "decision_id", decision_id)
                else:
                    req.decision_id = decision_id
        conn.execute(_LINK_DECISION, links)


_LINK_DECISION = (
    update(_REQUESTS).where(_REQUESTS.c.id == bindparam("rid")).values(decision_id=bindparam("did"))
)


def _request_row(req: RefundRequest) -> dict:
    return {c.key: getattr(req, c.key) for c in _REQUESTS.columns}


def insert_request(session: Session, req: RefundRequest) -> None:
    """Insert a new request's row from an object kept out of the session (deferred in a batch:
    then its final state is what is written)."""
    d = _deferred(session)
    if d is not None:
        d.requests.append(req)
        return
    session.connection().execute(_INSERT_REQUEST, _request_row(req))


def store_request_state(session: Session, req: RefundRequest) -> None:
    """Write the changing columns of a request inserted by :func:`insert_request`."""
    d = _deferred(session)
    if d is not None and req.id not in d.written:
        return  # written whole, in its final state, when the buffer is written
    session.connection().execute(
        _UPDATE_STATE, {"rid": req.id, **{c: getattr(req, c) for c in _STATE}}
    )


def attach_stored(session: Session, req: RefundRequest) -> None:
    """Put a request written by Core into the session as a loaded, unchanged object.

    Not in a deferring batch: its session ends with the batch, and the row is not there yet.
    """
    if _deferred(session) is not None:
        return
    make_transient_to_detached(req)
    session.add(req)


def store_order_money(session: Session, order: Order) -> None:
    """Write an order's held and refunded cash now, and leave the loaded order clean.

    The row keeps its ``CHECK (refunded + reserved <= amount)``: an over-refund fails here.
    """
    deferred.defer_or_execute(
        session,
        _UPDATE_MONEY,
        {"oid": order.id, "reserved": order.reserved_minor, "refunded": order.refunded_minor},
    )
    state = inspect(order)
    if set(state.committed_state) <= _MONEY:
        # Nothing else changed on it: mark it as stored, as a flush would (no UPDATE again).
        state._commit_all(state.dict, session.identity_map)


def get_request(session: Session, refund_id: str, *, lock: bool = False) -> RefundRequest | None:
    """The request ``refund_id`` re-read from the store (``lock``: under its row lock), or None."""
    stmt = select(RefundRequest).where(RefundRequest.id == refund_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.execute(stmt).scalar_one_or_none()


def order_id_of(session: Session, refund_id: str) -> str | None:
    """The order a request belongs to, or None when there is no such request."""
    stmt = select(RefundRequest.order_id).where(RefundRequest.id == refund_id)
    return session.execute(stmt).scalar_one_or_none()


def events_of(session: Session, refund_id: str) -> list[RefundEvent]:
    """A request's events, in the order they happened."""
    stmt = select(RefundEvent).where(RefundEvent.refund_id == refund_id).order_by(RefundEvent.seq)
    return list(session.execute(stmt).scalars())


def decisions_of(session: Session, refund_id: str) -> list[RefundDecision]:
    """A request's decisions, first to last (an appeal's adds one)."""
    stmt = (
        select(RefundDecision)
        .where(RefundDecision.refund_id == refund_id)
        .order_by(RefundDecision.id)
    )
    return list(session.execute(stmt).scalars())


_INSERT_EVENT = insert(RefundEvent.__table__)
_INSERT_TIMER = insert(RefundTimer.__table__)
_INSERT_DECISION = insert(RefundDecision.__table__).returning(RefundDecision.__table__.c.id)


def insert_event(session: Session, row: dict) -> None:
    """Append an event row (Core INSERT: events are never changed, no ORM bookkeeping).

    Every event is a state change of its request, so it is queued for the audit log too
    (written at commit with the transaction's other entries, in one INSERT).
    """
    deferred.defer_or_execute(session, _INSERT_EVENT, row)
    detail = {"seq": row["seq"], "from": row["from_status"], "to": row["to_status"]}
    if row["data"]:
        detail["data"] = row["data"]
    audit.later(f"refund.{row['event']}", subject=f"refund:{row['refund_id']}",
                actor=row["actor"], now=row["at"], detail=detail, session=session)  # fmt: skip


def insert_timer(session: Session, row: dict) -> None:
    """Set a pending SLA timer (deferred to the batch's end when one is writing)."""
    deferred.defer_or_execute(session, _INSERT_TIMER, {"state": "pending", **row})


def insert_decision(session: Session, row: dict) -> int | None:
    """Append a decision row; returns its id (None while deferred: the batch links it)."""
    d = _deferred(session)
    if d is not None:
        d.decisions.append(row)
        return None
    return session.connection().execute(_INSERT_DECISION, row).scalar_one()


def get_decision(session: Session, decision_id: int) -> RefundDecision | None:
    """The decision ``decision_id``, or None."""
    return session.get(RefundDecision, decision_id)


def timers_of(session: Session, refund_id: str) -> list[RefundTimer]:
    """A request's SLA timers, in the order they were set."""
    stmt = select(RefundTimer).where(RefundTimer.refund_id == refund_id).order_by(RefundTimer.id)
    return list(session.execute(stmt).scalars())


def pending_timer(session: Session, refund_id: str, kind: str) -> RefundTimer | None:
    """The request's pending timer of ``kind``, or None (at most one is pending per kind)."""
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
    """A page of requests in ``statuses``, least recently changed first, and their total count."""
    base = select(RefundRequest).where(RefundRequest.status.in_(statuses))
    total = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = session.execute(
        base.order_by(RefundRequest.updated_at, RefundRequest.id).limit(limit).offset(offset)
    ).scalars()
    return list(rows), int(total)


# -- policies --------------------------------------------------------------------------------


_ACTIVE_VERSION = select(PolicyActivation.version).order_by(PolicyActivation.id.desc()).limit(1)


def active_policy_version(session: Session) -> str | None:
    """The content version of the policy in force, or None before any activation."""
    return core_execute(session, _ACTIVE_VERSION).scalar_one_or_none()


def get_policy(session: Session, version: str) -> StoredPolicy | None:
    """A stored policy by its content version, or None."""
    return session.get(StoredPolicy, version)


def decisions_by_policy(session: Session, *, limit: int, offset: int) -> list[RefundDecision]:
    """A page of the decisions policies made (for replaying them against their version)."""
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


_BUYERS_ORDERS = (
    select(
        Order.buyer_id,
        Order.category,
        func.count(Order.id),
        func.coalesce(func.sum(Order.amount_minor), 0),
        func.min(Order.paid_at),
    )
    .where(Order.buyer_id.in_(bindparam("buyers", expanding=True)))
    .group_by(Order.buyer_id, Order.category)
)
_BUYERS_REQUESTS = select(RefundRequest.buyer_id, *_BUYER_REQUESTS.selected_columns).where(
    RefundRequest.buyer_id.in_(bindparam("buyers", expanding=True))
)
_ORDERS_LOCKED = (
    select(Order)
    .where(Order.id.in_(bindparam("ids", expanding=True)))
    .order_by(Order.id)  # one lock order for every batch: no deadlock between two
    .with_for_update()
    .execution_options(populate_existing=True)
)


def orders_locked(session: Session, order_ids) -> dict[str, Order]:
    """Several orders by id, row-locked (in id order), as loaded session objects."""
    rows = session.execute(_ORDERS_LOCKED, {"ids": sorted(set(order_ids))}).scalars()
    return {o.id: o for o in rows}


def buyers_orders_by_category(session: Session, buyer_ids) -> list[Row]:
    """:func:`buyer_orders_by_category` of several buyers, with the buyer first in each row."""
    return list(core_execute(session, _BUYERS_ORDERS, {"buyers": sorted(set(buyer_ids))}))


def buyers_requests(session: Session, buyer_ids) -> list[Row]:
    """:func:`buyer_requests` of several buyers, with the buyer first in each row."""
    return list(core_execute(session, _BUYERS_REQUESTS, {"buyers": sorted(set(buyer_ids))}))


def buyer_orders_by_category(session: Session, buyer_id: str) -> list[Row]:
    """``(category, orders, spend, first paid_at)`` of the buyer's orders, one row per category."""
    return list(core_execute(session, _BUYER_ORDERS, {"buyer": buyer_id}))


def buyer_requests(session: Session, buyer_id: str) -> list[Row]:
    """The buyer's requests: when, why, whether money went back without a return, and how
    many merchant appeals against each were upheld (one query)."""
    return list(core_execute(session, _BUYER_REQUESTS, {"buyer": buyer_id}))


def category_rates(session: Session) -> list[tuple[str, int, int, int]]:
    """``(category, orders, requests, refund-only requests)`` over the whole store."""
    write_buffered(session)
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
    """Orders per merchant (one merchant's, or all), counting the batch's own writes."""
    write_buffered(session)
    stmt = select(Order.merchant_id, func.count(Order.id)).group_by(Order.merchant_id)
    if merchant_id is not None:
        stmt = stmt.where(Order.merchant_id == merchant_id)
    return [(m, int(n)) for m, n in session.execute(stmt)]


def merchant_requests(session: Session, merchant_id: str | None = None) -> list[Row]:
    """``(merchant, reason, created_at, decided_at)`` of refund requests."""
    write_buffered(session)
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
    write_buffered(session)
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
    """Up to ``limit`` requests in ``statuses`` after id ``after``, with their decision's action (keyset pages for export)."""
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


def upheld_appeals(session: Session) -> list[Row]:
    """``(refund id, event data)`` of every upheld merchant appeal."""
    stmt = select(RefundEvent.refund_id, RefundEvent.data).where(
        RefundEvent.event == "appeal_upheld"
    )
    return list(session.execute(stmt))


def order_totals(session: Session) -> list[Row]:
    """``(order, cash paid, refunded)`` as the order rows keep them."""
    stmt = select(Order.id, Order.amount_minor, Order.refunded_minor)
    return list(session.execute(stmt))


def merchant_of_order(session: Session, order_id: str) -> str | None:
    """The merchant of an order, or None when there is no such order."""
    return session.scalar(select(Order.merchant_id).where(Order.id == order_id))


def merchant_of_refund(session: Session, refund_id: str) -> str | None:
    """The merchant of a refund request, or None when there is no such request."""
    return session.scalar(select(RefundRequest.merchant_id).where(RefundRequest.id == refund_id))


#: The events that decide a merchant's appeal, and what each says of the claim (True: abuse).
APPEAL_VERDICTS = {"appeal_upheld": True, "appeal_dismissed": False}


def appeal_outcomes(session: Session) -> dict[str, bool]:
    """Every decided merchant appeal: refund id → True when upheld (the claim was abuse),
    False when dismissed (it was honest)."""
    rows = session.execute(
        select(RefundEvent.refund_id, RefundEvent.event).where(
            RefundEvent.event.in_(sorted(APPEAL_VERDICTS))
        )
    )
    return {refund_id: APPEAL_VERDICTS[event] for refund_id, event in rows}


def shared_identity_periods(
    session: Session, attributes, *, now: datetime, cap_accounts: int
) -> list[tuple[str, str, str, datetime, datetime]]:
    """``(attribute, value, buyer, first paid_at, last paid_at)`` of every identity value that
    2 to ``cap_accounts`` accounts used up to ``now`` (abuse-ring links; see
    :mod:`tianping.aftersales.rings`).

    Per attribute, two stages as in the warehouse: the values whose smallest and largest buyer
    differ, then the use periods of those values only, capped by their number of accounts.
    """
    out: list[tuple[str, str, str, datetime, datetime]] = []
    paid = Order.paid_at <= now
    for name in attributes:
        col = getattr(Order, name)
        shared = (
            select(col)
            .where(paid, col.is_not(None), col != "")
            .group_by(col)
            .having(func.min(Order.buyer_id) != func.max(Order.buyer_id))
        )
        periods = (
            select(
                col.label("value"),
                Order.buyer_id,
                func.min(Order.paid_at).label("first"),
                func.max(Order.paid_at).label("last"),
            )
            .where(paid, col.in_(shared))
            .group_by(col, Order.buyer_id)
            .cte(f"periods_{name}")
        )
        capped = (
            select(periods.c.value).group_by(periods.c.value).having(func.count() <= cap_accounts)
        )
        rows = session.execute(
            select(periods.c.value, periods.c.buyer_id, periods.c.first, periods.c.last).where(
                periods.c.value.in_(capped)
            )
        )
        out.extend((name, v, b, f, la) for v, b, f, la in rows)
    return out


def buyers_order_counts(session: Session, buyer_ids, *, now: datetime) -> list[tuple[str, int]]:
    """``(buyer, orders paid up to now)`` of each of these buyers that has one."""
    q = (
        select(Order.buyer_id, func.count())
        .where(Order.buyer_id.in_(bindparam("buyers", expanding=True)), Order.paid_at <= now)
        .group_by(Order.buyer_id)
    )
    return [tuple(r) for part in _chunks(buyer_ids) for r in session.execute(q, {"buyers": part})]


def buyers_claim_times(session: Session, buyer_ids, *, now: datetime) -> list[tuple[str, datetime]]:
    """``(buyer, when)`` of every refund request these buyers made up to ``now``."""
    q = select(RefundRequest.buyer_id, RefundRequest.created_at).where(
        RefundRequest.buyer_id.in_(bindparam("buyers", expanding=True)),
        RefundRequest.created_at <= now,
    )
    return [tuple(r) for part in _chunks(buyer_ids) for r in session.execute(q, {"buyers": part})]


def _chunks(ids, size: int = 500):
    ids = sorted(set(ids))
    return [ids[i : i + size] for i in range(0, len(ids), size)]
