"""The API's guard: every route states the roles it admits with :func:`guard`.

``Authorization: Bearer <key>`` is checked against the store: a missing, malformed, unknown or
revoked key is 401; a role the route does not admit is 403. A route that admits merchants
names the path parameter that says whose data it is (``owner="refund"`` reads
``{refund_id}``; ``owner="self"`` is the caller's own data); a merchant key asking for another merchant's order, refund or score gets
404, exactly as if it did not exist, so ids are not confirmed to outsiders.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from tianping.api.deps import known_query_only, store_of
from tianping.auth import service
from tianping.auth.keys import MERCHANT, ROLES, Principal, hash_key
from tianping.errors import Forbidden, NotFound

bearer = HTTPBearer(auto_error=False, description="An API key: `tianping keys create`.")
#: Which path parameter holds the resource whose merchant must match a merchant key.
OWNER_PARAMS = {"order": "order_id", "refund": "refund_id", "merchant": "merchant_id"}


def allow(*roles: str, owner: str | None = None) -> Callable[..., Principal]:
    """A dependency admitting ``roles``; merchants only for the resource named by ``owner``."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    if MERCHANT in roles and owner not in (*OWNER_PARAMS, "self"):
        raise ValueError("a route admitting merchants must say which resource it scopes")

    def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        store = store_of(request)
        key = credentials.credentials if credentials else None
        who = admit(store.read(lambda s: service.authenticate(key, session=s)), roles)
        if who.role == MERCHANT and owner != "self":
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


def _check_owner(store, who: Principal, owner: str, params: dict[str, Any]) -> None:
    ident = str(params[OWNER_PARAMS[owner]])
    merchant = store.read(lambda s: service.merchant_of(owner, ident, session=s))
    if not who.owns(merchant):
        raise NotFound(f"no {owner} {ident!r}", field=OWNER_PARAMS[owner])


def guard(*roles: str, owner: str | None = None) -> dict[str, Any]:
    """Route keyword arguments: the guard as a dependency and the roles in the OpenAPI spec.

    >>> sorted(guard("admin", "operator"))
    ['dependencies', 'openapi_extra']
    """
    return {
        "dependencies": [Depends(allow(*roles, owner=owner)), Depends(known_query_only)],
        "openapi_extra": {"x-roles": list(roles), **({"x-owner": owner} if owner else {})},
    }


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
        hit = self._seen.get(digest)
        if hit is None or time.monotonic() - hit[1] > self.ttl:
            return None
        return hit[0]

    def put(self, digest: str, who: Principal) -> None:
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
