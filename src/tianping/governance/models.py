"""Decisions, their votes and frozen evidence, and the governance rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tianping.store import Base
from tianping.store.types import UTCDateTime


class GovernanceRules(Base):
    """One version of the governance rules; the latest row is in force."""

    __tablename__ = "governance_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    set_at: Mapped[datetime] = mapped_column(UTCDateTime())
    set_by: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str | None] = mapped_column(String(100))


class Decision(Base):
    """A decision: what is proposed, by whom, the quorum frozen at proposal, and where it stands.

    ``payload`` holds the kind's fields (the experiment and variant, the policy version, the
    amount, the goal's new target); ``effect`` what approving it did through the owning service.
    """

    __tablename__ = "decisions"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'vetoed', 'expired')", name="status"
        ),
        CheckConstraint(
            "kind IN ('ship_experiment', 'ship_race_winner', 'refund_policy', 'spend', "
            "'goal_change')",
            name="kind",
        ),
        CheckConstraint("required >= 1", name="required"),
        CheckConstraint("effect_status IN ('none', 'applied', 'pending')", name="effect_status"),
        Index("ix_decisions_status_proposed", "status", "proposed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(30), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    proposer: Mapped[str] = mapped_column(String(200))
    proposer_key_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    status_reason: Mapped[str] = mapped_column(Text, default="")
    approvers: Mapped[list[str]] = mapped_column(JSON)
    required: Mapped[int] = mapped_column(Integer)
    veto: Mapped[bool] = mapped_column(Boolean)
    override: Mapped[bool] = mapped_column(Boolean, default=False)
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    rules_version: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    effect_status: Mapped[str] = mapped_column(String(10), default="none")
    effect: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    votes: Mapped[list[DecisionVote]] = relationship(
        back_populates="decision", order_by="DecisionVote.id", cascade="all, delete-orphan"
    )
    evidence: Mapped[list[DecisionEvidence]] = relationship(
        back_populates="decision",
        order_by="DecisionEvidence.position",
        cascade="all, delete-orphan",
    )


class DecisionVote(Base):
    """One approver's ballot; an approver votes once per decision (the database refuses more)."""

    __tablename__ = "decision_votes"
    __table_args__ = (
        UniqueConstraint("decision_id", "voter"),
        CheckConstraint("choice IN ('approve', 'reject', 'veto')", name="choice"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), index=True)
    voter: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str | None] = mapped_column(String(100))
    choice: Mapped[str] = mapped_column(String(10))
    comment: Mapped[str] = mapped_column(Text, default="")
    voted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decision: Mapped[Decision] = relationship(back_populates="votes")


class DecisionEvidence(Base):
    """A frozen copy of one piece of evidence: its canonical JSON text and that text's SHA-256."""

    __tablename__ = "decision_evidence"
    __table_args__ = (UniqueConstraint("decision_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30))
    ref: Mapped[str] = mapped_column(String(500))
    content: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decision: Mapped[Decision] = relationship(back_populates="evidence")
