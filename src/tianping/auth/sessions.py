"""Dashboard sessions: held server-side, signed with the server's secret, ended at sign-out.

The cookie is ``<token>.<mac>``: ``token`` is 256 random bits, ``mac`` the HMAC-SHA256 of the
token under the server's secret (:mod:`tianping.auth.secret`). The store keeps one row per
session with only the token's SHA-256, the key it belongs to and its lifetime. So:

- a read of the store yields neither a token nor the secret: nothing in it signs anyone in;
- sign-out marks the row ended and the cookie stops working at once, on every worker;
- revoking the key ends its sessions at the next request (each check reads the key);
- the CSRF token of a session is another HMAC of its token under the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tianping.audit import log as audit
from tianping.auth.keys import Principal
from tianping.auth.models import ApiKey, DashboardSession

COOKIE = "tianping_session"
LIFETIME_SECONDS = 8 * 3600


def _mac(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(who: Principal, *, secret: bytes, session: Session, now: datetime) -> str:
    """Start a session for the (already authenticated) key of ``who``; returns the cookie."""
    session.execute(delete(DashboardSession).where(DashboardSession.expires_at < now))
    token = secrets.token_urlsafe(32)
    session.add(
        DashboardSession(
            token_sha256=_digest(token), key_id=who.key_id, created_at=now,
            expires_at=now + timedelta(seconds=LIFETIME_SECONDS),
        )
    )  # fmt: skip
    session.flush()
    audit.later("session.started", subject=f"api_key:{who.key_id}", actor=who.name,
                key_id=who.key_id, now=now, session=session)  # fmt: skip
    return f"{token}.{_mac(secret, token)}"


def _token(cookie: str | None, secret: bytes) -> str | None:
    token, _, mac = (cookie or "").partition(".")
    if not token or len(cookie or "") > 200:
        return None
    return token if hmac.compare_digest(mac, _mac(secret, token)) else None


def verify(
    cookie: str | None, *, secret: bytes, session: Session, now: datetime
) -> tuple[Principal, str] | None:
    """The principal and CSRF token of a live session; None if absent, forged, expired, ended
    or its key revoked."""
    token = _token(cookie, secret)
    if token is None:
        return None
    row = session.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.role, ApiKey.merchant_id)
        .join(DashboardSession, DashboardSession.key_id == ApiKey.id)
        .where(
            DashboardSession.token_sha256 == _digest(token),
            DashboardSession.ended_at.is_(None),
            DashboardSession.expires_at > now,
            ApiKey.revoked_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    return Principal(row.id, row.name, row.role, row.merchant_id), _mac(secret, f"csrf.{token}")


def end(cookie: str | None, *, secret: bytes, session: Session, now: datetime) -> bool:
    """End the cookie's session (sign-out); False when it was not a live session."""
    token = _token(cookie, secret)
    if token is None:
        return False
    ended = session.execute(
        update(DashboardSession)
        .where(DashboardSession.token_sha256 == _digest(token), DashboardSession.ended_at.is_(None))
        .values(ended_at=now)
        .returning(DashboardSession.key_id)
    ).first()
    if ended is not None:
        audit.later("session.ended", subject=f"api_key:{ended.key_id}", key_id=ended.key_id,
                    now=now, session=session)  # fmt: skip
    return ended is not None
