"""Every governance query."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tianping.governance.models import Decision, GovernanceRules


def get_decision(decision_id: int, *, session: Session, lock: bool = False) -> Decision | None:
    """The decision, with its row locked for the transaction when ``lock``."""
    q = select(Decision).where(Decision.id == decision_id)
    if lock:
        q = q.with_for_update().execution_options(populate_existing=True)
    return session.scalar(q)


def list_decisions(
    *,
    session: Session,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[Decision]:
    """A page of decisions, newest first, optionally of one status and kind."""
    q = select(Decision)
    if status:
        q = q.where(Decision.status == status)
    if kind:
        q = q.where(Decision.kind == kind)
    return session.scalars(q.order_by(Decision.id.desc()).limit(limit).offset(offset)).all()


def due_for_expiry(now: datetime, *, session: Session) -> Sequence[Decision]:
    """Pending decisions whose time is up, locked."""
    q = (
        select(Decision)
        .where(Decision.status == "pending", Decision.expires_at <= now)
        .order_by(Decision.id)
        .with_for_update()
    )
    return session.scalars(q).all()


def latest_rules(*, session: Session) -> GovernanceRules | None:
    """The rules set last, or None when none was ever set (the defaults apply)."""
    return session.scalar(select(GovernanceRules).order_by(GovernanceRules.id.desc()).limit(1))
