"""Idempotency records of the API's unsafe requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tianping.store import Base
from tianping.store.types import UTCDateTime


class IdempotencyRecord(Base):
    """The first answer to ``(caller, scope, key)``; replays with the same request hash get it
    again. ``caller`` is the API key's public id: one key holder's keys never meet another's."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("caller", "scope", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    caller: Mapped[str] = mapped_column(String(8))
    scope: Mapped[str] = mapped_column(String(300))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
