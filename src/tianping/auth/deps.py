"""The API's guard: every route states the roles it admits with :func:`guard`.

``Authorization: Bearer <key>`` is checked against the store: a missing, malformed, unknown or
revoked key is 401; a role the route does not admit is 403. A route that admits merchants
says whose data it is with an :class:`Owner` given by the domain that owns the resource (the
refund routes' ``ORDER`` reads ``{order_id}`` and finds the order's merchant; ``"self"`` is the
caller's own data), so the guard reads no domain's tables itself; a merchant key asking for
another merchant's order, refund or score gets 404, exactly as if it did not exist, so ids are
not confirmed to outsiders.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tianping.api.deps import known_query_only, store_of
from tianping.auth import service
from tianping.auth.keys import MERCHANT, ROLES, Principal, hash_key
from tianping.errors import Forbidden, NotFound

bearer = HTTPBearer(auto_error=False, description="An API key: `tianping keys create`.")
#: ``owner`` of a route about the caller's own key (``GET /v1/me``): any merchant may call it.
SELF = "self"


@dataclass(frozen=True)
class Owner:
    """The resource a merchant-scoped route acts on, as the domain that owns it describes it.

    Attributes:
        kind: what the path names (``order``, ``refund``, ``merchant``), for messages and the
            OpenAPI document's ``x-owner``.
        param: the path parameter holding its id.
        merchant_of: the merchant it belongs to, or None when there is no such resource.
    """

    kind: str
    param: str
    merchant_of: Callable[[str, Session], str | None]


def allow(*roles: str, owner: Owner | str | None = None) -> Callable[..., Principal]:
    """A dependency admitting ``roles``; merchants only for the resource named by ``owner``."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    if MERCHANT in roles and not (isinstance(owner, Owner) or owner == SELF):
        raise ValueError("a route admitting merchants must say which resource it scopes")

    def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        store = store_of(request)
        key = credentials.credentials if credentials else None
        who = admit(store.read(lambda s: service.authenticate(key, session=s)), roles)
        if who.role == MERCHANT and isinstance(owner, Owner):
            _check_owner(store, who, owner, request.path_params)
        request.state.principal = who
        return who

    return check


def admit(who: Principal, roles: tuple[str, ...]) -> Principal:
    """``who`` when its role is one of ``roles``, else :class:`Forbidden` naming them."""
    if who.role not in roles:
        raise Forbidden(
            f"a {who.role} key may not do this; it needs one of: {', '.join(roles)}",
            code="wrong_role",
        )
    return who


def _check_owner(store, who: Principal, owner: Owner, params: dict[str, Any]) -> None:
    ident = str(params[owner.param])
    merchant = store.read(lambda s: owner.merchant_of(ident, s))
    if not who.owns(merchant):
        raise NotFound(f"no {owner.kind} {ident!r}", field=owner.param)


def guard(*roles: str, owner: Owner | str | None = None) -> dict[str, Any]:
    """Route keyword arguments: the guard as a dependency and the roles in the OpenAPI spec.

    >>> sorted(guard("admin", "operator"))
    ['dependencies', 'openapi_extra']
    """
    return {
        "dependencies": [Depends(allow(*roles, owner=owner)), Depends(known_query_only)],
        "openapi_extra": {"x-roles": list(roles), **({"x-owner": _kind(owner)} if owner else {})},
    }


def _kind(owner: Owner | str) -> str:
    return owner.kind if isinstance(owner, Owner) else owner


def principal_of(request: Request) -> Principal:
    """The principal the route's guard admitted (after :func:`guard` ran)."""
    return request.state.principal


class RecentKeys:
    """Keys this process found valid in the last ``ttl`` seconds, by their hash.

    Only for :func:`pre_admit`'s early answer; the authoritative check is repeated inside the
    transaction that does the work, so a key revoked a moment ago is still refused there.
    """

    def __init__(self, ttl: float = 2.0, size: int = 10_000):
        self.ttl, self.size = ttl, size
        self._seen: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> Principal | None:
        """The principal of a key hash seen valid within ``ttl`` seconds, else None."""
        hit = self._seen.get(digest)
        if hit is None or time.monotonic() - hit[1] > self.ttl:
            return None
        return hit[0]

    def put(self, digest: str, who: Principal) -> None:
        """Remember that the key with this hash proved ``who`` (the cache is emptied when full)."""
        with self._lock:
            if len(self._seen) >= self.size:
                self._seen.clear()
            self._seen[digest] = (who, time.monotonic())


def pre_admit(*roles: str) -> Callable[..., Any]:
    """An async dependency for a route whose work re-checks the key in its own transaction.

    It answers a missing, malformed, unknown, revoked or wrong-role key with 401/403 before
    the body is validated (as :func:`guard` does), without a thread hand-off or a store read
    for a key seen valid in the last seconds (:class:`RecentKeys`).
    """
    if not roles or set(roles) - set(ROLES) or MERCHANT in roles:
        raise ValueError(f"pre_admit takes non-merchant roles, got {roles}")

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str | None:
        key = credentials.credentials if credentials else None
        recent = request.app.state.recent_keys
        who = recent.get(hash_key(key)) if key else None
        if who is None:
            store = store_of(request)
            who = await run_in_threadpool(
                store.read, lambda s: service.authenticate(key, session=s)
            )
            recent.put(hash_key(key), who)
        request.state.principal = admit(who, roles)
        return key

    return check
