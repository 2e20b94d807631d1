"""Thin routes of the refund API: parse, call one service function, render."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic_core import to_jsonable_python

from tianping.api import idempotency
from tianping.api.batch import Done, Job
from tianping.api.deps import IdPath, PageParams, Store, known_query_only, page_params, store_of
from tianping.api.schemas import Page
from tianping.audit import log as audit
from tianping.auth import service as auth
from tianping.auth.deps import Owner, admit, guard, pre_admit, principal_of
from tianping.auth.keys import ADMIN, ANALYST, MERCHANT, OPERATOR, SERVICE, key_id_of
from tianping.errors import NotFound
from tianping.refunds import fund as protection_fund
from tianping.refunds import orders as refund_orders
from tianping.refunds import repository as repo
from tianping.refunds import schemas as S
from tianping.refunds import scores as refund_scores
from tianping.refunds import service, signals

router = APIRouter(prefix="/v1", tags=["refunds"])
StoreDep = Annotated[Store, Depends(store_of)]
PageDep = Annotated[PageParams, Depends(page_params)]
KeyHeader = Annotated[str | None, idempotency.header(required=False)]
RequiredKeyHeader = Annotated[str, idempotency.header(required=True)]
#: What merchant-scoped routes act on, and how the guard finds its merchant.
ORDER = Owner("order", "order_id", lambda ident, s: repo.merchant_of_order(s, ident))
REFUND = Owner("refund", "refund_id", lambda ident, s: repo.merchant_of_refund(s, ident))
MERCHANT_ID = Owner("merchant", "merchant_id", lambda ident, s: ident)


def _refund_json(req, session) -> dict:
    return S.RefundOut.model_validate(service.view(req, session=session)).model_dump(mode="json")


def _new_refund_json(req, session) -> dict:
    """The answer to a new request, built from the rows it just wrote.

    The same JSON as :func:`_refund_json` (the tests compare them with the request read back),
    without validating our own rows through the response model again: validating the nested
    events, timers and decision was a tenth of a decision's CPU.
    """
    return to_jsonable_python(service.view(req, session=session))


def _respond(status: int, body: dict, replayed: bool) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(body, status_code=status, headers=headers)


@router.post(
    "/orders",
    status_code=201,
    response_model=S.OrderOut,
    responses={200: {"model": S.OrderOut}},
    **guard(ADMIN, SERVICE),
)
def record_order(body: S.OrderIn, request: Request, store: StoreDep, key: KeyHeader = None):
    """Record a paid order as the marketplace reports it (an identical report answers 200)."""

    def work(s):
        order, created = refund_orders.record_order(body, session=s, env=store.env)
        fields = {k: getattr(order, k) for k in S.OrderOut.model_fields if k != "order_id"}
        return 201 if created else 200, S.OrderOut(order_id=order.id, **fields).model_dump(
            mode="json"
        )

    return idempotency.respond(store, request, key=key, body=body, work=work)


@router.get(
    "/orders/{order_id}/ledger",
    response_model=S.OrderLedgerOut,
    **guard(ADMIN, OPERATOR, SERVICE, MERCHANT, owner=ORDER),
)
def order_ledger(order_id: IdPath, store: StoreDep, page: PageDep):
    """The order's ledger entries (a page, oldest first) and its paid/refunded/refundable cash."""
    return store.read(
        lambda s: refund_orders.order_ledger(
            order_id, session=s, limit=page.limit, offset=page.offset
        )
    )


#: Roles that may create refund requests.
CREATE_ROLES = (ADMIN, SERVICE)


@router.post(
    "/refund-requests",
    status_code=201,
    response_model=S.RefundOut,
    openapi_extra={"x-roles": list(CREATE_ROLES)},
    dependencies=[Depends(known_query_only)],
)
async def create_refund_request(
    body: S.RefundRequestIn,
    request: Request,
    api_key: Annotated[str | None, Depends(pre_admit(*CREATE_ROLES))],
    key: RequiredKeyHeader,
):
    """A buyer's refund request, decided at once by the active policy. Needs ``Idempotency-Key``.

    The hot write: handled on the event loop and written by the store's batched writer
    (:mod:`tianping.api.batch`) together with the requests that arrived with it; the key's
    check, the idempotency record and the decision share that one transaction.
    """
    store: Store = request.app.state.store
    job = refund_job(
        store,
        body,
        api_key=api_key,
        idempotency_key=idempotency.check_key(key, required=True),
    )
    status, answer, replayed = await request.app.state.batcher.submit(job)
    return _respond(status, answer, replayed)


SCOPE = "refund-requests"
_KEYS = "tianping.keys_checked"
_BATCH = "tianping.refund_batch"


def _authenticated(api_key: str | None, session):
    """The key's principal, read once per transaction (a batch checks one key once)."""
    txn = session.get_transaction()
    memo = session.info.get(_KEYS)
    if memo is None or memo[0] is not txn:
        memo = session.info[_KEYS] = (txn, {})
    who = memo[1].get(api_key)
    if who is None:
        who = memo[1][api_key] = auth.authenticate(api_key, session=session)
    return who


@dataclass
class _Prefetched:
    """What a batch of new requests reads up front, kept current as its jobs write."""

    txn: object
    orders: dict  # order id -> Order, row-locked
    stored: dict  # (caller, idempotency key) -> (request hash, status, answer)
    histories: dict  # buyer id -> BuyerHistory


def _prefetch(session, jobs):
    # Order rows first (locked, in id order), then the keys: the same order of reads as a
    # request alone, so a concurrent retry with the same key still waits, then replays.
    orders = repo.orders_locked(session, [j.args[0] for j in jobs])
    stored = idempotency.stored_many(session, scope=SCOPE, pairs=[j.args[1] for j in jobs])
    histories = signals.buyer_histories({o.buyer_id for o in orders.values()}, session=session)
    session.info[_BATCH] = _Prefetched(session.get_transaction(), orders, stored, histories)
    repo.start_deferring(session)
    return repo.write_deferred


def _prefetched(session) -> _Prefetched | None:
    ctx = session.info.get(_BATCH)
    return ctx if ctx is not None and ctx.txn is session.get_transaction() else None


def refund_job(store: Store, body: S.RefundRequestIn, *, api_key: str | None, idempotency_key: str):
    """The job that answers one ``POST /v1/refund-requests``: ``(status, body, replayed)``.

    Its idempotency record belongs to the key's public id (checked against the store in
    ``prepare``, so a forged id never gets that far).
    """
    digest = idempotency.request_hash(body)
    mine = (key_id_of(api_key or "") or "", idempotency_key)

    def prepare(session):
        who = admit(_authenticated(api_key, session), CREATE_ROLES)
        audit.acting_as(session, who.name, who.key_id)  # this job's changes are this key's
        ctx = _prefetched(session)
        if ctx is None:
            # The order's row lock first: a concurrent request with the same key and body
            # waits on it, then finds the record the first one committed and replays it.
            order = repo.get_order(session, body.order_id, lock=True)
            found = idempotency.stored_many(session, scope=SCOPE, pairs=[mine])
        else:
            order, found = ctx.orders.get(body.order_id), ctx.stored
        stored = found.get(mine)
        if stored is not None:
            return Done((*idempotency.replay(stored, key=idempotency_key, digest=digest), True))
        if order is None:
            raise NotFound(f"unknown order {body.order_id!r}", field="order_id")
        history = ctx.histories.get(order.buyer_id) if ctx is not None else None
        return service.prepare_request(body, order, session=session, env=store.env, history=history)

    def execute(session, prepared):
        req = service.apply_request(prepared, session=session)
        answer = _new_refund_json(req, session)
        idempotency.record(
            session,
            caller=mine[0],
            scope=SCOPE,
            key=idempotency_key,
            digest=digest,
            status=201,
            response=answer,
            now=prepared.now,
        )
        ctx = _prefetched(session)
        if ctx is not None:
            ctx.stored[mine] = (digest, 201, answer)
            history = ctx.histories.get(req.buyer_id)
            if history is not None:
                signals.note_request(history, req)
        return 201, answer, False

    return Job(prepare, execute, prefetch=_prefetch, args=(body.order_id, mine))


def _act(store: Store, request: Request, key: str | None, body, action):
    def work(session):
        return 200, _refund_json(action(session), session)

    return idempotency.respond(store, request, key=key, body=body, work=work)


@router.get(
    "/refund-requests/{refund_id}",
    response_model=S.RefundOut,
    **guard(ADMIN, OPERATOR, SERVICE, MERCHANT, owner=REFUND),
)
def get_refund_request(refund_id: IdPath, store: StoreDep):
    """A request with its decision, events and SLA timers."""
    return store.read(lambda s: _refund_json(service.get_or_raise(refund_id, session=s), s))


@router.post(
    "/refund-requests/{refund_id}/appeal",
    response_model=S.RefundOut,
    **guard(ADMIN, SERVICE, MERCHANT, owner=REFUND),
)
def appeal(
    refund_id: IdPath,
    request: Request,
    store: StoreDep,
    body: S.AppealIn | None = None,
    key: KeyHeader = None,
):
    """The merchant contests a paid refund within the appeal window (7 days by default)."""
    body = body or S.AppealIn()
    return _act(
        store,
        request,
        key,
        body,
        lambda s: service.appeal(refund_id, body, session=s, env=store.env),
    )


@router.post(
    "/refund-requests/{refund_id}/merchant-response",
    response_model=S.RefundOut,
    **guard(ADMIN, SERVICE, MERCHANT, owner=REFUND),
)
def merchant_response(
    refund_id: IdPath,
    body: S.MerchantResponseIn,
    request: Request,
    store: StoreDep,
    key: KeyHeader = None,
):
    """The merchant's answer while negotiating (silent for 48 h: decided for the buyer)."""
    return _act(
        store,
        request,
        key,
        body,
        lambda s: service.respond_as_merchant(refund_id, body, session=s, env=store.env),
    )


@router.post(
    "/refund-requests/{refund_id}/return-shipped",
    response_model=S.RefundOut,
    **guard(ADMIN, SERVICE),
)
def return_shipped(
    refund_id: IdPath,
    request: Request,
    store: StoreDep,
    body: S.ReturnShippedIn | None = None,
    key: KeyHeader = None,
):
    """The buyer shipped the goods back."""
    body = body or S.ReturnShippedIn()
    return _act(
        store,
        request,
        key,
        body,
        lambda s: service.return_shipped(refund_id, body, session=s, env=store.env),
    )


@router.post(
    "/refund-requests/{refund_id}/return-received",
    response_model=S.RefundOut,
    **guard(ADMIN, SERVICE, MERCHANT, owner=REFUND),
)
def return_received(
    refund_id: IdPath,
    request: Request,
    store: StoreDep,
    body: S.ReturnReceivedIn | None = None,
    key: KeyHeader = None,
):
    """The merchant received the goods back: the decided refund is paid."""
    body = body or S.ReturnReceivedIn()
    return _act(
        store,
        request,
        key,
        body,
        lambda s: service.return_received(refund_id, body, session=s, env=store.env),
    )


@router.get("/manual-reviews", response_model=Page[S.RefundOut], **guard(ADMIN, OPERATOR))
def manual_reviews(store: StoreDep, page: PageDep):
    """Requests waiting for a reviewer (manual review and merchant appeals), oldest first."""

    def read(s):
        items, total = service.review_queue(session=s, limit=page.limit, offset=page.offset)
        return {
            "items": [_refund_json(r, s) for r in items],
            "total": total,
            "limit": page.limit,
            "offset": page.offset,
        }

    return store.read(read)


@router.post(
    "/manual-reviews/{refund_id}/decide", response_model=S.RefundOut, **guard(ADMIN, OPERATOR)
)
def decide_review(
    refund_id: IdPath, body: S.ReviewIn, request: Request, store: StoreDep, key: KeyHeader = None
):
    """A reviewer's decision on a queued request or appeal; the reviewer is the key's holder."""
    reviewer = principal_of(request).name
    return _act(
        store,
        request,
        key,
        body,
        lambda s: service.review(refund_id, body, reviewer=reviewer, session=s, env=store.env),
    )


@router.get(
    "/buyers/{buyer_id}/credit", response_model=S.BuyerCreditOut, **guard(ADMIN, OPERATOR, SERVICE)
)
def buyer_credit(buyer_id: IdPath, store: StoreDep):
    """The buyer's credit score (350–950) from the orders and refunds recorded here, explained."""
    return store.read(lambda s: refund_scores.buyer_credit(buyer_id, session=s, env=store.env))


@router.get(
    "/merchants/{merchant_id}/quality",
    response_model=S.MerchantQualityOut,
    **guard(ADMIN, OPERATOR, ANALYST, SERVICE, MERCHANT, owner=MERCHANT_ID),
)
def merchant_quality(merchant_id: IdPath, store: StoreDep):
    """The merchant's quality score (0–5) with each component."""
    return store.read(
        lambda s: refund_scores.merchant_quality(merchant_id, session=s, env=store.env)
    )


@router.get("/protection-fund", response_model=S.FundOut, **guard(ADMIN, OPERATOR, ANALYST))
def protection_fund_view(store: StoreDep, limit: Annotated[int, Query(ge=1, le=1000)] = 20):
    """The merchant protection fund: balance per currency, top-ups and payouts, the latest
    ``limit`` movements. It is filled by approved ``spend`` decisions whose payload names
    ``"fund": "protection_fund"`` (``POST /v1/decisions``)."""
    return store.read(lambda s: protection_fund.view(session=s, limit=limit))
