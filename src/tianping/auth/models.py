"""API keys as stored: only the SHA-256 of each key, never the key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from tianping.store import Base
from tianping.store.types import UTCDateTime


class ApiKey(Base):
    """One key: its public id, holder, role, merchant (merchant keys) and revocation time."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(
            "role IN ('admin', 'operator', 'analyst', 'merchant', 'service')", name="role"
        ),
    )

    id: Mapped[str] = mapped_column(String(8), primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    merchant_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DashboardSession(Base):
    """A signed-in dashboard session, held server-side so that sign-out ends it at once.

    The row keeps only the SHA-256 of the session's token; the token itself lives in the
    browser's cookie, next to an HMAC under the server's secret (which is not in the store).
    """

    __tablename__ = "dashboard_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
