"""``Idempotency-Key``: the same key and body get the same answer; another body gets 409.

Every POST that creates or changes something takes the header. A record belongs to the
caller (the API key's public id), the route (method and path) and the key, so one key holder
can never read or collide with another's answers. The key's record is inserted first, in the same transaction as the work it guards. A
concurrent request with the same key blocks on the unique index (PostgreSQL) or on the write
lock (SQLite) until the first commits, then finds the record and answers with its stored body;
if the first fails, nothing is recorded and the key stays free. Errors are not recorded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from tianping.api.deps import Store
from tianping.api.models import IdempotencyRecord
from tianping.errors import Conflict, InvalidInput
from tianping.inputs import printable_key
from tianping.store import deferred
from tianping.store.db import core_execute

MAX_KEY_LENGTH = 255
#: The header, as routes declare it.
HEADER = "Idempotency-Key"


def request_hash(body: BaseModel | None) -> str:
    """SHA-256 of the validated body's canonical JSON."""
    data = None if body is None else body.model_dump(mode="json")
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_key(key: str | None, *, required: bool) -> str | None:
    """The header's value when well-formed (1-255 visible ASCII characters), None when absent
    and optional.

    Raises:
        InvalidInput: absent but required, or malformed.
    """
    if key is None or key == "":
        if required:
            raise InvalidInput("the Idempotency-Key header is required", field=HEADER)
        return None
    return printable_key(key, field=HEADER, max_length=MAX_KEY_LENGTH)


def header(*, required: bool):
    """The ``Idempotency-Key`` header as a route declares it, in ``Annotated`` (an optional
    one takes ``= None`` as its default)."""
    from fastapi import Header

    return Header(
        alias=HEADER,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[!-~]+$",
        description="1-255 visible ASCII characters; a retry with the same key and body gets "
        "the first answer again, another body 409 idempotency_key_reused.",
    )


def caller_of(request: Request) -> str:
    """The public id of the API key the route's guard admitted."""
    return request.state.principal.key_id


def respond(
    store: Store,
    request: Request,
    *,
    key: str | None,
    body: BaseModel | None,
    work: Callable[[Session], tuple[int, Any]],
) -> JSONResponse:
    """Answer a POST through :func:`run`, scoped by caller and ``METHOD /path``; a replayed
    answer carries ``Idempotent-Replayed: true``."""
    status, answer, replayed = run(
        store,
        caller=caller_of(request),
        scope=f"{request.method} {request.url.path}",
        key=check_key(key, required=False),
        body=body,
        work=work,
    )
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(answer, status_code=status, headers=headers)


def run(
    store: Store,
    *,
    caller: str,
    scope: str,
    key: str | None,
    body: BaseModel | None,
    work: Callable[[Session], tuple[int, Any]],
) -> tuple[int, Any, bool]:
    """Do ``work`` once per ``(caller, scope, key)``; returns ``(status, body, replayed)``."""
    if key is None:
        return (*store.transact(work), False)
    digest = request_hash(body)

    def attempt(session: Session) -> tuple[int, Any, bool]:
        stmt = select(IdempotencyRecord).where(
            IdempotencyRecord.caller == caller,
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
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
            caller=caller,
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
_RECORD = insert(_T)
_LOOKUP_MANY = select(
    _T.c.caller, _T.c.key, _T.c.request_hash, _T.c.status_code, _T.c.response
).where(
    _T.c.scope == bindparam("scope"),
    _T.c.key.in_(bindparam("keys", expanding=True)),
    _T.c.caller.in_(bindparam("callers", expanding=True)),
)


def stored_many(
    session: Session, *, scope: str, pairs
) -> dict[tuple[str, str], tuple[str, int, Any]]:
    """``(caller, key) -> (request hash, status, answer)`` of the pairs that have a record."""
    pairs = set(pairs)
    params = {"scope": scope, "keys": sorted({k for _, k in pairs}),
              "callers": sorted({c for c, _ in pairs})}  # fmt: skip
    rows = core_execute(session, _LOOKUP_MANY, params)
    return {(c, k): (h, status, response) for c, k, h, status, response in rows if (c, k) in pairs}


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
    session: Session, *, caller: str, scope: str, key: str, digest: str, status: int,
    response: Any, now,
) -> None:  # fmt: skip
    """Store the answer to a new key, in the transaction of the work it answers.

    The unique ``(caller, scope, key)`` index makes a concurrent first use of the same key fail at
    commit time (IntegrityError); its retry then finds this record.
    """
    deferred.defer_or_execute(
        session,
        _RECORD,
        {
            "caller": caller,
            "scope": scope,
            "key": key,
            "request_hash": digest,
            "status_code": status,
            "response": response,
            "created_at": now,
        },
    )
