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
from sqlalchemy import select
from sqlalchemy.orm import Session

from tianping.api.deps import Store
from tianping.api.models import IdempotencyRecord
from tianping.errors import Conflict, InvalidInput

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
