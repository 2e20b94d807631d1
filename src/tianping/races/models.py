"""Races in the store: the definition and phase (``races``) and every step (``race_steps``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tianping.store import Base
from tianping.store.types import UTCDateTime


class Race(Base):
    """One race: its definition (``spec``, the YAML as JSON) and where it stands.

    ``experiment`` is the adaptive phase's experiment (whose variant weights the race
    rewrites); ``confirm_experiment`` the confirmation's, on fresh units with fixed weights.
    ``shipped_variant`` (with ``shipped_at``) is set once, when a strategy is shipped: the race
    is over and its experiment serves that strategy to every unit.
    """

    __tablename__ = "races"
    __table_args__ = (
        CheckConstraint("phase IN ('racing', 'confirming', 'decided', 'stopped')", name="phase"),
        CheckConstraint("decision IS NULL OR decision IN ('ship', 'no_ship')", name="decision"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(64))
    experiment: Mapped[str] = mapped_column(String(200))
    confirm_experiment: Mapped[str | None] = mapped_column(String(200))
    phase: Mapped[str] = mapped_column(String(20), default="racing")
    active: Mapped[list[str]] = mapped_column(JSON)
    winner: Mapped[str | None] = mapped_column(String(100))
    comparator: Mapped[str | None] = mapped_column(String(100))
    confirm_start: Mapped[date | None] = mapped_column(Date)
    decision: Mapped[str | None] = mapped_column(String(20))
    steps: Mapped[int] = mapped_column(Integer, default=0)
    shipped_variant: Mapped[str | None] = mapped_column(String(100))
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RaceStep(Base):
    """One step: the data it saw, what it computed and what it wrote (appended, never edited).

    JSON columns: ``standings`` ``[{arm, n, estimate, sd, p_best, expected_loss, weight,
    active}]``, ``guardrails`` ``[{metric, effect_size, pvalue, hurt}]``, ``reasons``
    ``[str]``, ``budget`` ``[{arm, allocated_minor, spend_minor, return_value, roi, p_best}]``
    (budget mode) and ``confirmation`` (the confirmation's verdict, when judged).
    """

    __tablename__ = "race_steps"
    __table_args__ = (UniqueConstraint("race_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    race_id: Mapped[int] = mapped_column(ForeignKey("races.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(20))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)
    seed: Mapped[int] = mapped_column(Integer)
    leader: Mapped[str | None] = mapped_column(String(100))
    stop: Mapped[bool] = mapped_column(Boolean, default=False)
    standings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    guardrails: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    budget: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    confirmation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    regret: Mapped[float] = mapped_column(Float, default=0.0)
    equal_split_regret: Mapped[float] = mapped_column(Float, default=0.0)
    moved_share: Mapped[float] = mapped_column(Float, default=0.0)
