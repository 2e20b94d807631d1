"""Create, list, revoke and check API keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from tianping import inputs
from tianping.audit import log as audit
from tianping.auth.keys import Principal, check_role, generate_key, hash_key, key_id_of
from tianping.auth.models import ApiKey
from tianping.errors import Conflict, InvalidInput, NotFound, Unauthorized
from tianping.store.db import core_execute


def create(
    role: str, *, session: Session, now: datetime, merchant_id: str | None = None,
    name: str | None = None,
) -> tuple[ApiKey, str]:  # fmt: skip
    """A new key for ``role``: its stored row and the key itself, which is not kept anywhere."""
    check_role(role, merchant_id)
    if name is not None and not 0 < len(name.strip()) <= 200:
        raise InvalidInput("a key holder's name has 1 to 200 characters", field="name")
    if name is not None:
        name = inputs.name(name, field="name", max_length=inputs.MAX_NAME)
    key = generate_key()
    key_id = key_id_of(key)
    if session.get(ApiKey, key_id) is not None:  # 1 in 4 billion: draw again
        return create(role, session=session, now=now, merchant_id=merchant_id, name=name)
    row = ApiKey(
        id=key_id, key_sha256=hash_key(key), name=name or f"{role}-{key_id}", role=role,
        merchant_id=merchant_id, created_at=now,
    )  # fmt: skip
    session.add(row)
    session.flush()
    audit.later("api_key.created", subject=f"api_key:{key_id}", now=now, session=session,
                detail={"role": role, "name": row.name, "merchant_id": merchant_id})  # fmt: skip
    return row, key


def list_keys(*, session: Session, include_revoked: bool = True) -> Sequence[ApiKey]:
    """Every key, oldest first."""
    q = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if not include_revoked:
        q = q.where(ApiKey.revoked_at.is_(None))
    return session.scalars(q).all()


def revoke(key_id: str, *, session: Session, now: datetime) -> ApiKey:
    """Revoke a key at once; revoking twice is a conflict."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no API key {key_id!r}", field="key_id")
    if row.revoked_at is not None:
        raise Conflict(f"API key {key_id} was already revoked at {row.revoked_at:%Y-%m-%d %H:%M}")
    row.revoked_at = now
    session.flush()
    audit.later("api_key.revoked", subject=f"api_key:{key_id}", now=now, session=session,
                detail={"role": row.role, "name": row.name})  # fmt: skip
    return row


def authenticate(key: str | None, *, session: Session) -> Principal:
    """The principal a presented key proves, or :class:`Unauthorized` (missing, wrong, revoked)."""
    if not key:
        raise Unauthorized("send an API key: Authorization: Bearer <key>")
    if key_id_of(key) is None:
        raise Unauthorized("the API key is malformed")
    row = core_execute(session, _BY_HASH, {"h": hash_key(key)}).first()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("the API key is unknown or revoked")
    return Principal(row.id, row.name, row.role, row.merchant_id)


# Columns only (no ORM entity): checked on every request, so kept cheap.
_BY_HASH = select(ApiKey.id, ApiKey.name, ApiKey.role, ApiKey.merchant_id, ApiKey.revoked_at).where(
    ApiKey.key_sha256 == bindparam("h")
)
