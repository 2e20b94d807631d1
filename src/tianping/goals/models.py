"""KPI goals and their revisions: a goal is never edited, only revised with a reason."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tianping.store import Base


class Goal(Base):
    """A named KPI goal; what it asks is its latest revision (:attr:`current`), every earlier one kept."""

    __tablename__ = "goals"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revisions: Mapped[list[GoalRevision]] = relationship(
        back_populates="goal", order_by="GoalRevision.number", cascade="all, delete-orphan"
    )

    @property
    def current(self) -> GoalRevision:
        """The revision in force: the latest."""
        return self.revisions[-1]


class GoalRevision(Base):
    """One version of a goal: what, how much, by when, and why it was set or changed."""

    __tablename__ = "goal_revisions"
    __table_args__ = (UniqueConstraint("goal_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    goal_id: Mapped[int] = mapped_column(ForeignKey("goals.id"))
    number: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(50))
    grain: Mapped[str] = mapped_column(String(10))
    target: Mapped[float] = mapped_column(Float)
    deadline: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    baseline: Mapped[float | None] = mapped_column(Float, nullable=True)
    baseline_period: Mapped[date | None] = mapped_column(Date, nullable=True)
    author: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    goal: Mapped[Goal] = relationship(back_populates="revisions")
