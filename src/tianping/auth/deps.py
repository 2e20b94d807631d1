"""The API's guard: every route states the roles it admits with :func:`guard`.

``Authorization: Bearer <key>`` is checked against the store: a missing, malformed, unknown or
revoked key is 401; a role the route does not admit is 403. A route that admits merchants
names the path parameter that says whose data it is (``owner="refund"`` reads
``{refund_id}``; ``owner="self"`` is the caller's own data); a merchant key asking for another merchant's order, refund or score gets
404, exactly as if it did not exist, so ids are not confirmed to outsiders.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tianping.api.deps import store_of
from tianping.auth import service
from tianping.auth.keys import MERCHANT, ROLES, Principal
from tianping.errors import Forbidden, NotFound

_bearer = HTTPBearer(auto_error=False, description="An API key: `tianping keys create`.")
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
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        store = store_of(request)
        key = credentials.credentials if credentials else None
        who = store.read(lambda s: service.authenticate(key, session=s))
        if who.role not in roles:
            raise Forbidden(
                f"a {who.role} key may not do this; it needs one of: {', '.join(roles)}",
                code="wrong_role",
            )
        if who.role == MERCHANT and owner != "self":
            _check_owner(store, who, owner, request.path_params)
        request.state.principal = who
        return who

    return check


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
        "dependencies": [Depends(allow(*roles, owner=owner))],
        "openapi_extra": {"x-roles": list(roles), **({"x-owner": owner} if owner else {})},
    }


def principal_of(request: Request) -> Principal:
    """The principal the route's guard admitted (after :func:`guard` ran)."""
    return request.state.principal
