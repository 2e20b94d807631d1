"""The dashboard's session cookie and CSRF token, derived from the signed-in key.

The cookie is ``<key id>.<expiry>.<nonce>.<mac>``, the MAC an HMAC-SHA256 keyed by the key's
stored SHA-256, which never leaves the store. So the server keeps no session table and needs
no secret of its own, every worker can check any cookie, and revoking the key ends its
sessions at the next request. The CSRF token of a session is another HMAC of its nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy.orm import Session

from tianping.auth.keys import Principal
from tianping.auth.models import ApiKey

COOKIE = "tianping_session"
LIFETIME_SECONDS = 8 * 3600


def _mac(key_sha256: str, message: str) -> str:
    return hmac.new(bytes.fromhex(key_sha256), message.encode(), hashlib.sha256).hexdigest()


def issue(row: ApiKey, *, now: datetime) -> str:
    """A session cookie for the key ``row`` (already authenticated), valid for 8 hours."""
    body = f"{row.id}.{int(now.timestamp()) + LIFETIME_SECONDS}.{secrets.token_hex(16)}"
    return f"{body}.{_mac(row.key_sha256, body)}"


def verify(cookie: str | None, *, session: Session, now: datetime) -> tuple[Principal, str] | None:
    """The principal and CSRF token of a valid cookie; None if absent, forged, expired or revoked."""
    parts = (cookie or "").split(".")
    if len(parts) != 4 or not parts[1].isdigit() or int(parts[1]) < now.timestamp():
        return None
    row = session.get(ApiKey, parts[0])
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(parts[3], _mac(row.key_sha256, ".".join(parts[:3]))):
        return None
    principal = Principal(row.id, row.name, row.role, row.merchant_id)
    return principal, _mac(row.key_sha256, f"csrf.{parts[2]}")
