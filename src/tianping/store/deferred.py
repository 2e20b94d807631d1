"""Rows a transaction writes at its end, one ``executemany`` per statement.

The API's batched writer runs many jobs in one transaction (group commit). Append-only rows
that nothing later in the batch reads back (events, timers, idempotency records, an order's
money carried by its loaded object) are buffered here and written together before the commit.
A domain starts the buffer with :func:`start` and writes it with :func:`write`, after its own
rows that these refer to; outside such a transaction :func:`defer_or_execute` executes at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

_KEY = "tianping.deferred_rows"


@dataclass
class _Rows:
    txn: object
    rows: dict[Any, list[dict]] = field(default_factory=dict)  # statement -> parameter rows


def start(session: Session) -> None:
    """Buffer rows passed to :func:`defer_or_execute` until :func:`write`, in this transaction."""
    session.info[_KEY] = _Rows(session.get_transaction())


def _active(session: Session) -> _Rows | None:
    buffered = session.info.get(_KEY)
    return buffered if buffered is not None and buffered.txn is session.get_transaction() else None


def active(session: Session) -> bool:
    """Whether this transaction is buffering rows."""
    return _active(session) is not None


def defer_or_execute(session: Session, stmt: Any, row: dict) -> None:
    """Execute ``stmt`` with ``row`` now, or at :func:`write` when the transaction buffers.

    Only for statements whose effect nothing later in the transaction reads back from the
    database.
    """
    buffered = _active(session)
    if buffered is not None:
        buffered.rows.setdefault(stmt, []).append(row)
    else:
        session.connection().execute(stmt, row)


def write(session: Session, *, stop: bool = False) -> None:
    """Execute the buffered rows, statement by statement in first-use order; with ``stop``,
    stop buffering."""
    buffered = _active(session)
    if stop:
        session.info.pop(_KEY, None)
    if buffered is None:
        return
    rows, buffered.rows = buffered.rows, {}
    conn = session.connection()
    for stmt, params in rows.items():
        conn.execute(stmt, params)
