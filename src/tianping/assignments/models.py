"""Exposures reported through the API, queued in the store until loaded into the warehouse."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tianping.store import Base
from tianping.store.types import UTCDateTime


class QueuedExposure(Base):
    """A unit's first exposure to an experiment, with the columns of the ``exposures`` table.

    Only the first report of a unit in an experiment is kept (an analysis counts a unit from
    its first exposure), so clients may resend batches safely.
    """

    __tablename__ = "exposure_queue"
    __table_args__ = (UniqueConstraint("experiment", "unit_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    experiment: Mapped[str] = mapped_column(String(100))
    variant: Mapped[str] = mapped_column(String(100))
    unit_id: Mapped[str] = mapped_column(String(200))
    exposed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    key_id: Mapped[str | None] = mapped_column(String(8))
