"""Routes of the red-packet API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from tianping.api import idempotency
from tianping.api.deps import IdPath, PageParams, Store, page_params, store_of
from tianping.api.schemas import Page
from tianping.auth.deps import guard
from tianping.auth.keys import ADMIN, OPERATOR, SERVICE
from tianping.clock import ensure_utc
from tianping.coupons import schemas as S
from tianping.coupons import service

router = APIRouter(prefix="/v1", tags=["red packets"])
StoreDep = Annotated[Store, Depends(store_of)]


def _out(c) -> S.CouponOut:
    return S.CouponOut(
        coupon_id=c.id, **{k: getattr(c, k) for k in S.CouponOut.model_fields if k != "coupon_id"}
    )


@router.post(
    "/coupons", status_code=201, response_model=S.CouponOut, **guard(ADMIN, OPERATOR, SERVICE)
)
def issue_coupon(
    body: S.CouponIssueIn, request: Request, store: StoreDep,
    key: Annotated[str | None, idempotency.header(required=False)] = None,
):  # fmt: skip
    """Issue a red packet to a buyer, funded by the platform's red-packet budget."""

    def work(s):
        return 201, _out(
            service.issue(
                coupon_id=body.coupon_id,
                buyer_id=body.buyer_id,
                amount_minor=body.amount_minor,
                currency=body.currency,
                expires_at=ensure_utc(body.expires_at),
                min_spend_minor=body.min_spend_minor,
                session=s,
                now=store.env.clock.now(),
            )
        ).model_dump(mode="json")

    return idempotency.respond(store, request, key=key, body=body, work=work)


@router.get("/coupons/{coupon_id}", response_model=S.CouponOut, **guard(ADMIN, OPERATOR, SERVICE))
def get_coupon(coupon_id: IdPath, store: StoreDep):
    """A red packet and what became of it."""
    return store.read(lambda s: _out(service.get_or_raise(coupon_id, session=s)))


@router.get(
    "/buyers/{buyer_id}/coupons",
    response_model=Page[S.CouponOut],
    **guard(ADMIN, OPERATOR, SERVICE),
)
def buyer_coupons(
    buyer_id: IdPath, store: StoreDep, page: Annotated[PageParams, Depends(page_params)]
):
    """A buyer's red packets, oldest first."""

    def read(s):
        items = service.of_buyer(buyer_id, session=s, limit=page.limit + 1, offset=page.offset)
        return {
            "items": [_out(c) for c in items[: page.limit]],
            "total": page.offset + len(items),
            "limit": page.limit,
            "offset": page.offset,
        }

    return store.read(read)
