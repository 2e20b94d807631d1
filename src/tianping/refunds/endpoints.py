"""Thin routes of the refund API: parse, call one service function, render."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from tianping.api import idempotency
from tianping.api.deps import PageParams, Store, page_params, store_of
from tianping.auth.deps import guard
from tianping.auth.keys import ADMIN, ANALYST, MERCHANT, OPERATOR, SERVICE
from tianping.refunds import schemas as S
from tianping.refunds import service

router = APIRouter(prefix="/v1", tags=["refunds"])
StoreDep = Annotated[Store, Depends(store_of)]
PageDep = Annotated[PageParams, Depends(page_params)]
KeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]


def _refund_json(req, session) -> dict:
    return S.RefundOut.model_validate(service.view(req, session=session)).model_dump(mode="json")


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
def record_order(body: S.OrderIn, store: StoreDep, response: Response):
    """Record a paid order as the marketplace reports it (an identical report answers 200)."""
    order, created = store.transact(lambda s: service.record_order(body, session=s, env=store.env))
    response.status_code = 201 if created else 200
    return S.OrderOut(
        order_id=order.id,
        **{k: getattr(order, k) for k in S.OrderOut.model_fields if k != "order_id"},
    )


@router.get(
    "/orders/{order_id}/ledger",
    response_model=S.OrderLedgerOut,
    **guard(ADMIN, OPERATOR, SERVICE, MERCHANT, owner="order"),
)
def order_ledger(order_id: str, store: StoreDep, page: PageDep):
    """The order's ledger entries (a page, oldest first) and its paid/refunded/refundable cash."""
    return store.read(
        lambda s: service.order_ledger(order_id, session=s, limit=page.limit, offset=page.offset)
    )


@router.post(
    "/refund-requests", status_code=201, response_model=S.RefundOut, **guard(ADMIN, SERVICE)
)
def create_refund_request(body: S.RefundRequestIn, store: StoreDep, key: KeyHeader = None):
    """A buyer's refund request, decided at once by the active policy. Needs ``Idempotency-Key``."""
    key = idempotency.check_key(key, required=True)

    def work(session):
        return 201, _refund_json(
            service.request_refund(body, session=session, env=store.env), session
        )

    return _respond(*idempotency.run(store, scope="refund-requests", key=key, body=body, work=work))


def _act(store: Store, request: Request, key: str | None, body, action):
    key = idempotency.check_key(key, required=False)

    def work(session):
        return 200, _refund_json(action(session), session)

    scope = f"POST {request.url.path}"
    return _respond(*idempotency.run(store, scope=scope, key=key, body=body, work=work))


@router.get(
    "/refund-requests/{refund_id}",
    response_model=S.RefundOut,
    **guard(ADMIN, OPERATOR, SERVICE, MERCHANT, owner="refund"),
)
def get_refund_request(refund_id: str, store: StoreDep):
    """A request with its decision, events and SLA timers."""
    return store.read(lambda s: _refund_json(service.get_or_raise(refund_id, session=s), s))


@router.post(
    "/refund-requests/{refund_id}/appeal",
    response_model=S.RefundOut,
    **guard(ADMIN, SERVICE, MERCHANT, owner="refund"),
)
def appeal(
    refund_id: str,
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
    **guard(ADMIN, SERVICE, MERCHANT, owner="refund"),
)
def merchant_response(
    refund_id: str,
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
    refund_id: str,
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
    **guard(ADMIN, SERVICE, MERCHANT, owner="refund"),
)
def return_received(
    refund_id: str,
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


@router.get("/manual-reviews", response_model=S.Page[S.RefundOut], **guard(ADMIN, OPERATOR))
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
    refund_id: str, body: S.ReviewIn, request: Request, store: StoreDep, key: KeyHeader = None
):
    """A reviewer's decision on a queued request or appeal."""
    return _act(
        store,
        request,
        key,
        body,
        lambda s: service.review(refund_id, body, session=s, env=store.env),
    )


@router.get(
    "/buyers/{buyer_id}/credit", response_model=S.BuyerCreditOut, **guard(ADMIN, OPERATOR, SERVICE)
)
def buyer_credit(buyer_id: str, store: StoreDep):
    """The buyer's credit score (350–950) from the orders and refunds recorded here, explained."""
    return store.read(lambda s: service.buyer_credit(buyer_id, session=s, env=store.env))


@router.get(
    "/merchants/{merchant_id}/quality",
    response_model=S.MerchantQualityOut,
    **guard(ADMIN, OPERATOR, ANALYST, SERVICE, MERCHANT, owner="merchant"),
)
def merchant_quality(merchant_id: str, store: StoreDep):
    """The merchant's quality score (0–5) with each component."""
    return store.read(lambda s: service.merchant_quality(merchant_id, session=s, env=store.env))
