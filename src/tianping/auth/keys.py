"""API keys and roles (pure): key generation, hashing at rest, the principal a key proves.

A key is ``tp_<key id>_<secret>``: the key id (8 hex digits) is public and names the key in
listings, audit entries and ``revoke``; the secret is 256 random bits. Only the SHA-256 of the
whole key is stored, so a leaked store does not leak usable keys. With that much entropy a
plain hash is enough (no slow KDF is needed: there is nothing to brute-force).

>>> key = generate_key()
>>> key_id_of(key) == key.split("_")[1], len(hash_key(key))
(True, 64)
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from tianping.errors import InvalidInput

ADMIN, OPERATOR, ANALYST, MERCHANT, SERVICE = "admin", "operator", "analyst", "merchant", "service"
#: Every role, most powerful first.
ROLES = (ADMIN, OPERATOR, ANALYST, MERCHANT, SERVICE)
#: Roles that may read the dashboard's staff pages (metrics, experiments, after-sales).
STAFF = (ADMIN, OPERATOR, ANALYST)

_KEY = re.compile(r"tp_([0-9a-f]{8})_[A-Za-z0-9_-]{43}")
_MERCHANT_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: the key's id, its holder's name, role and merchant (if any)."""

    key_id: str
    name: str
    role: str
    merchant_id: str | None = None

    def owns(self, merchant_id: str | None) -> bool:
        """Whether this principal may see the merchant's data (staff and service see all)."""
        return self.role != MERCHANT or (
            merchant_id is not None and merchant_id == self.merchant_id
        )


def generate_key() -> str:
    """A new key: ``tp_<8 hex id>_<43 url-safe characters, 256 bits>``."""
    return f"tp_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str | None:
    """The public id of a well-formed key, else None."""
    m = _KEY.fullmatch(key)
    return m.group(1) if m else None


def hash_key(key: str) -> str:
    """What the store keeps of a key: its SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def check_role(role: str, merchant_id: str | None) -> None:
    """A merchant key needs its merchant id; no other role takes one."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; one of {', '.join(ROLES)}", field="role")
    if role == MERCHANT and not merchant_id:
        raise InvalidInput("a merchant key needs --merchant ID", field="merchant_id")
    if role != MERCHANT and merchant_id:
        raise InvalidInput(
            f"only merchant keys take a merchant id, not {role}", field="merchant_id"
        )
    if merchant_id and not _MERCHANT_ID.fullmatch(merchant_id):
        raise InvalidInput(f"bad merchant id {merchant_id!r}", field="merchant_id")
