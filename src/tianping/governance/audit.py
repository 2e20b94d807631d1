"""The audit log in the store: append under a lock, read with filters, verify the chain.

Any domain records a state change with :func:`record` inside the transaction that makes the
change, as the last write of that transaction (it takes the log's lock, which is held until
commit, so appends are serialised and the chain never forks). The caller commits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tianping.clock import ensure_utc
from tianping.errors import InvalidInput
from tianping.governance import chain
from tianping.governance.canonical import dumps
from tianping.governance.models import AuditEntry

#: Arbitrary constant naming the PostgreSQL advisory lock that serialises appends.
AUDIT_LOCK = 7_120_140_009


def record(
    action: str,
    *,
    subject: str,
    actor: str,
    session: Session,
    now: datetime,
    detail: Mapping[str, Any] | None = None,
    key_id: str | None = None,
) -> AuditEntry:
    """Append one entry: who (``actor``, ``key_id``) did ``action`` to ``subject`` at ``now``.

    Raises:
        InvalidInput: the actor is empty.
    """
    if not actor or not actor.strip():
        raise InvalidInput("every audited change needs an actor", field="actor")
    _lock(session)
    last = session.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, chain.GENESIS)
    entry = AuditEntry(
        seq=seq,
        at=ensure_utc(now),
        actor=actor.strip(),
        key_id=key_id,
        action=action,
        subject=subject,
        detail=dumps(detail or {}),
        prev_hash=prev,
    )
    entry.hash = chain.entry_hash(prev, fields_of(entry))
    session.add(entry)
    session.flush()
    return entry


def _lock(session: Session) -> None:
    # SQLite writers already hold the database lock (BEGIN IMMEDIATE); PostgreSQL needs one.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK})


def fields_of(e: AuditEntry) -> dict[str, Any]:
    """The fields an entry's hash covers."""
    return {
        "seq": e.seq,
        "at": ensure_utc(e.at).isoformat(),
        "actor": e.actor,
        "key_id": e.key_id,
        "action": e.action,
        "subject": e.subject,
        "detail": e.detail,
    }


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to read; every field is optional. ``action`` matches a prefix."""

    actor: str | None = None
    action: str | None = None
    subject: str | None = None
    key_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def entries(
    *, session: Session, where: AuditFilter = AuditFilter(), limit: int = 100, offset: int = 0
) -> list[AuditEntry]:
    """Entries matching ``where``, oldest first (``since`` inclusive, ``until`` exclusive)."""
    q = select(AuditEntry)
    if where.actor:
        q = q.where(AuditEntry.actor == where.actor)
    if where.action:
        q = q.where(AuditEntry.action.startswith(where.action, autoescape=True))
    if where.subject:
        q = q.where(AuditEntry.subject == where.subject)
    if where.key_id:
        q = q.where(AuditEntry.key_id == where.key_id)
    if where.since:
        q = q.where(AuditEntry.at >= where.since)
    if where.until:
        q = q.where(AuditEntry.at < where.until)
    return list(session.scalars(q.order_by(AuditEntry.seq).limit(limit).offset(offset)))


def _chain(session: Session) -> Iterator[chain.ChainEntry]:
    rows = session.execute(
        select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=2000)
    )
    for (e,) in rows:
        yield chain.ChainEntry(e.seq, fields_of(e), e.prev_hash, e.hash)


def verify(*, session: Session) -> chain.Verification:
    """Walk the whole log and check every link and hash (see :func:`chain.verify`)."""
    return chain.verify(_chain(session))


def entry_dict(e: AuditEntry) -> dict[str, Any]:
    """An entry as plain data for the CLI and the API (``detail`` parsed)."""
    import json

    return {
        "seq": e.seq,
        "at": ensure_utc(e.at),
        "actor": e.actor,
        "key_id": e.key_id,
        "action": e.action,
        "subject": e.subject,
        "detail": json.loads(e.detail),
        "hash": e.hash,
    }
