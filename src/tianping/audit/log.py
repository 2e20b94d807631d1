"""The audit log in the store: append under a lock, read with filters, verify the chain.

Two ways to write an entry, both in the transaction that makes the change:

- :func:`later` queues the entry on the session; every queued entry is appended when the
  session commits, under the log's lock, in one multi-row INSERT, after the transaction's
  other rows are flushed. That keeps the lock short, costs one statement per transaction
  however many changes it made, and takes the lock after every row lock, so writers that lock
  rows in different orders never deadlock on the log: every domain uses it.
- :func:`record` appends at once and returns the entry (it takes the lock, held until
  commit: only as the last write of a transaction, or a row lock taken after it can
  deadlock on PostgreSQL with a writer holding that row and waiting for the log).

Appends are serialised — a PostgreSQL transaction-scoped advisory lock, SQLite's ``BEGIN
IMMEDIATE`` — so concurrent writers never fork the chain. A rolled-back transaction drops its
queued entries. Who acts through the API is put on the session with :func:`acting_as`
(``key_id`` comes from there when the caller does not give one). The caller commits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, insert, select, text
from sqlalchemy.orm import Session

from tianping.audit import chain
from tianping.audit.canonical import dumps
from tianping.audit.models import AuditEntry
from tianping.clock import ensure_utc
from tianping.errors import InvalidInput

#: Arbitrary constant naming the PostgreSQL advisory lock that serialises appends.
AUDIT_LOCK = 7_120_140_009
#: ``session.info`` keys: entries queued by :func:`later`, and who acts (:func:`acting_as`).
_QUEUED = "tianping.audit.queued"
_ACTING = "tianping.audit.acting"
#: The actor of a change nobody in particular made (a default activated on first use).
SYSTEM = "system"


def acting_as(session: Session, actor: str, key_id: str | None = None) -> None:
    """Say who makes this session's changes (an API key's holder and id, a CLI user).

    Entries written without an explicit ``key_id`` take this one, and entries whose actor
    is a domain role (``buyer:B1``, ``timer:merchant_response``) name this actor as ``via``.
    """
    session.info[_ACTING] = (actor, key_id)


def acting(session: Session) -> tuple[str | None, str | None]:
    """``(actor, key_id)`` set by :func:`acting_as`, or ``(None, None)``."""
    return session.info.get(_ACTING, (None, None))


@dataclass(frozen=True)
class _Queued:
    action: str
    subject: str
    actor: str
    at: datetime
    detail: Mapping[str, Any]
    key_id: str | None


def later(
    action: str,
    *,
    subject: str,
    session: Session,
    now: datetime,
    actor: str | None = None,
    detail: Mapping[str, Any] | None = None,
    key_id: str | None = None,
) -> None:
    """Queue an entry, appended when ``session`` commits (see the module docstring).

    ``actor`` defaults to who :func:`acting_as` named, else ``system``.
    """
    who, via_key = acting(session)
    name = (actor or who or SYSTEM).strip() or SYSTEM
    detail = dict(detail or {})
    if who and who != name:
        detail.setdefault("via", who)
    queued = _Queued(action, subject, name, ensure_utc(now), detail, key_id or via_key)
    if not session.in_transaction():  # so a rollback, even before any write, drops it
        session.begin()
    session.info.setdefault(_QUEUED, []).append(queued)


def write_queued(session: Session) -> int:
    """Append every entry :func:`later` queued on ``session`` now; returns how many.

    Called by the commit hook, and before any read or immediate append in the same session
    so the log reads in the order things happened.
    """
    queued = session.info.pop(_QUEUED, None)
    if not queued:
        return 0
    session.flush()  # the transaction's own rows first: the log's lock is taken last
    seq, prev = _head(session)
    rows = []
    for q in queued:
        seq += 1
        row = {"seq": seq, "at": q.at, "actor": q.actor, "key_id": q.key_id, "action": q.action,
               "subject": q.subject, "detail": dumps(q.detail), "prev_hash": prev}  # fmt: skip
        row["hash"] = prev = chain.entry_hash(prev, _fields(row))
        rows.append(row)
    session.connection().execute(_INSERT, rows)  # Core executemany: no ORM bookkeeping
    return len(rows)


_INSERT = insert(AuditEntry.__table__)


@event.listens_for(Session, "before_commit")
def _on_commit(session: Session) -> None:
    write_queued(session)


@event.listens_for(Session, "after_soft_rollback")
def _on_rollback(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the whole transaction, not a savepoint
        session.info.pop(_QUEUED, None)


_LAST = select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)


def _head(session: Session) -> tuple[int, str]:
    """Lock the log for this transaction and read its last ``(seq, hash)``."""
    _lock(session)
    last = session.connection().execute(_LAST).first()
    return (last.seq, last.hash) if last else (0, chain.GENESIS)


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
    write_queued(session)
    seq, prev = _head(session)
    entry = AuditEntry(
        seq=seq + 1,
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
    return _fields(
        {"seq": e.seq, "at": e.at, "actor": e.actor, "key_id": e.key_id, "action": e.action,
         "subject": e.subject, "detail": e.detail}
    )  # fmt: skip


def _fields(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**{k: row[k] for k in chain.FIELDS}, "at": ensure_utc(row["at"]).isoformat()}


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
    write_queued(session)
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
    write_queued(session)
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
