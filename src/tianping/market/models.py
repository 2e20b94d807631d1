"""Market figures as imported: one row per platform, period and figure."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tianping.store import Base


class MarketFigure(Base):
    """A competitor's or the market's published figure (money in major units, exact)."""

    __tablename__ = "market_figures"
    __table_args__ = (UniqueConstraint("platform", "period", "metric"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(100))
    period: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    metric: Mapped[str] = mapped_column(String(20))
    value: Mapped[float] = mapped_column(Numeric(24, 2))
    source: Mapped[str] = mapped_column(Text, default="")
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
