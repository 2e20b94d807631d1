"""One error family for the whole system.

Every user-facing failure is a :class:`TianpingError` carrying a machine code, a message,
the field (or column/row) it concerns, the HTTP status the API answers with and the exit
status the CLI ends with. Edges render it; nothing below them prints or exits.
"""

from __future__ import annotations


class TianpingError(Exception):
    """Base class: a failure the user can act on.

    Args:
        message: what is wrong, in a sentence that names the thing.
        field: the field, column or location the error concerns, if any.
        code: a stable machine-readable code; defaults to the class's.
    """

    code: str = "error"
    http_status: int = 400
    exit_code: int = 1

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str | None]:
        """The API's error body: ``{"code", "message", "field"}``."""
        return {"code": self.code, "message": self.message, "field": self.field}


class InvalidInput(TianpingError):
    """Input that does not satisfy the documented contract (bad value, type or range)."""

    code = "invalid_input"
    http_status = 422
    exit_code = 1


class UsageError(TianpingError):
    """A request that cannot even start: unknown table, unreadable file, missing columns."""

    code = "usage"
    http_status = 400
    exit_code = 2


class NotFound(TianpingError):
    """A named thing does not exist."""

    code = "not_found"
    http_status = 404
    exit_code = 2


class NoData(TianpingError):
    """The question is fine but there is nothing to answer it from yet (an empty home, a
    warehouse without orders, an experiment without exposures). The message says what fills
    it. The CLI ends with exit status 1, like ``grep`` finding nothing."""

    code = "no_data"
    http_status = 404
    exit_code = 1


class Conflict(TianpingError):
    """The request conflicts with the current state (duplicate key, reused idempotency key)."""

    code = "conflict"
    http_status = 409
    exit_code = 1


class Forbidden(TianpingError):
    """The caller is known but not allowed to do this."""

    code = "forbidden"
    http_status = 403
    exit_code = 1


class Unauthorized(TianpingError):
    """The caller did not prove who they are."""

    code = "unauthorized"
    http_status = 401
    exit_code = 1
