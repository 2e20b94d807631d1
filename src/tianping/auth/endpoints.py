"""``GET /v1/me``: who the presented key says the caller is."""

from __future__ import annotations

from fastapi import APIRouter, Request

from tianping.auth.deps import guard, principal_of
from tianping.auth.keys import ROLES

router = APIRouter(prefix="/v1", tags=["auth"])


@router.get("/me", **guard(*ROLES, owner="self"))
def me(request: Request) -> dict:
    """The key's id, holder, role and merchant (merchant keys)."""
    who = principal_of(request)
    return {
        "key_id": who.key_id,
        "name": who.name,
        "role": who.role,
        "merchant_id": who.merchant_id,
    }
