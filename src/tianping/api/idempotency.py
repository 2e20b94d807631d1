"""``Idempotency-Key``: the same key and body get the same answer; another body gets 409.

The key's record is inserted first, in the same transaction as the work it guards. A
concurrent request with the same key blocks on the unique index (PostgreSQL) or on the write
lock (SQLite) until the first commits, then finds the record and answers with its stored body;
if the first fails, nothing is recorded and the key stays free. Errors are not recorded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from tianping.api.deps import Store
from tianping.api.models import IdempotencyRecord
from tianping.errors import Conflict, InvalidInput
from tianping.store.db import core_execute

MAX_KEY_LENGTH = 255


def request_hash(body: BaseModel | None) -> str:
    """SHA-256 of the validated body's canonical JSON."""
    data = None if body is None else body.model_dump(mode="json")
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_key(key: str | None, *, required: bool) -> str | None:
    if key is None or key == "":
        if required:
            raise InvalidInput("the Idempotency-Key header is required", field="Idempotency-Key")
        return None
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters", field="Idempotency-Key"
        )
    return key


def run(
    store: Store,
    *,
    scope: str,
    key: str | None,
    body: BaseModel | None,
    work: Callable[[Session], tuple[int, dict[str, Any]]],
) -> tuple[int, dict[str, Any], bool]:
    """Do ``work`` once per ``(scope, key)``; returns ``(status, body, replayed)``."""
    if key is None:
        return (*store.transact(work), False)
    digest = request_hash(body)

    def attempt(session: Session) -> tuple[int, dict[str, Any], bool]:
        stmt = select(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
        )
        record = session.execute(stmt).scalar_one_or_none()
        if record is not None:
            if record.request_hash != digest:
                raise Conflict(
                    f"Idempotency-Key {key!r} was already used with a different request body",
                    field="Idempotency-Key",
                    code="idempotency_key_reused",
                )
            return record.status_code, record.response, True
        record = IdempotencyRecord(
            scope=scope,
            key=key,
            request_hash=digest,
            status_code=0,
            response={},
            created_at=store.env.clock.now(),
        )
        session.add(record)
        session.flush()
        status, response = work(session)
        record.status_code, record.response = status, response
        return status, response, False

    return store.transact(attempt)


_T = IdempotencyRecord.__table__
_LOOKUP = select(_T.c.request_hash, _T.c.status_code, _T.c.response).where(
    _T.c.scope == bindparam("scope"), _T.c.key == bindparam("key")
)
_RECORD = insert(_T)


def lookup(session: Session, *, scope: str, key: str, digest: str) -> tuple[int, Any] | None:
    """The stored answer to ``(scope, key)``, or None when the key is new.

    Raises:
        Conflict: the key was used with a different request body (``idempotency_key_reused``).
    """
    row = session.execute(_LOOKUP, {"scope": scope, "key": key}).first()
    return None if row is None else replay(tuple(row), key=key, digest=digest)


_LOOKUP_MANY = select(_T.c.key, _T.c.request_hash, _T.c.status_code, _T.c.response).where(
    _T.c.scope == bindparam("scope"), _T.c.key.in_(bindparam("keys", expanding=True))
)


def stored_many(session: Session, *, scope: str, keys) -> dict[str, tuple[str, int, Any]]:
    """``key -> (request hash, status, answer)`` of the keys that have a record."""
    rows = core_execute(session, _LOOKUP_MANY, {"scope": scope, "keys": sorted(set(keys))})
    return {k: (h, status, response) for k, h, status, response in rows}


def replay(stored: tuple[str, int, Any], *, key: str, digest: str) -> tuple[int, Any]:
    """The stored answer, or 409 when the key came with another body."""
    request_hash, status, response = stored
    if request_hash != digest:
        raise Conflict(
            f"Idempotency-Key {key!r} was already used with a different request body",
            field="Idempotency-Key",
            code="idempotency_key_reused",
        )
    return status, response


def record(
    session: Session, *, scope: str, key: str, digest: str, status: int, response: Any, now
) -> None:
    """Store the answer to a new key, in the transaction of the work it answers.

    The unique ``(scope, key)`` index makes a concurrent first use of the same key fail at
    commit time (IntegrityError); its retry then finds this record.
    """
    from tianping.refunds.repository import defer_or_execute

    defer_or_execute(
        session,
        _RECORD,
        {
            "scope": scope,
            "key": key,
            "request_hash": digest,
            "status_code": status,
            "response": response,
            "created_at": now,
        },
    )
