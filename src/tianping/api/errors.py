"""One error envelope for the whole API: ``{"error": {"code", "message", "field"}}``.

:class:`~tianping.errors.TianpingError` carries its own HTTP status; request validation
failures (malformed JSON, wrong types, out-of-range values) are 422 — malformed JSON 400 —
with the offending field; unknown routes and methods keep their 404/405, an oversized body is 413.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from tianping import inputs
from tianping.errors import TianpingError


class ErrorDetail(BaseModel):
    """The error itself: a stable code, a message naming what is wrong, and the field concerned."""

    code: str = Field(description="A stable machine-readable code, e.g. invalid_input.")
    message: str = Field(description="What is wrong, naming the thing.")
    field: str | None = Field(description="The field, header or parameter concerned, if any.")


class ErrorOut(BaseModel):
    """Every error the API answers: ``{"error": {"code", "message", "field"}}``."""

    error: ErrorDetail


def error_body(code: str, message: str, field: str | None) -> dict:
    """The JSON body of an error answer, as every route and handler sends it (:class:`ErrorOut`)."""
    return {"error": {"code": code, "message": message, "field": field}}


async def _tianping_error(_request: Request, exc: TianpingError) -> JSONResponse:
    return JSONResponse(error_body(exc.code, exc.message, exc.field), status_code=exc.http_status)


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request", "type": ""}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return JSONResponse(
            error_body("malformed_json", f"request body is not valid JSON: {first['msg']}", None),
            status_code=400,
        )
    msg = str(first["msg"]).removeprefix("Value error, ")
    message = f"{field}: {msg}" if field else msg
    code = first.get("type") if first.get("type") in inputs.CODES else "invalid_input"
    return JSONResponse(error_body(code, message, field), status_code=422)


async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        exc.status_code, "http_error"
    )
    return JSONResponse(
        error_body(code, str(exc.detail), None), status_code=exc.status_code, headers=exc.headers
    )


def install(app: FastAPI) -> None:
    """Register the handlers on an app."""
    app.add_exception_handler(TianpingError, _tianping_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


#: Why each error status can be answered, as the OpenAPI document says it.
WHY = {
    400: "Malformed JSON (`malformed_json`) or a request that cannot start (`usage`).",
    401: "No API key, or a malformed, unknown or revoked one (`unauthorized`).",
    403: "The key's role may not do this (`wrong_role`).",
    404: "What the path or the body names does not exist, or is another merchant's (`not_found`).",
    409: "Conflicts with the current state: a changed report, a move the lifecycle does not "
    "allow, a reused `Idempotency-Key`, a passed deadline, a lost race (retry it).",
    413: "The body is over 1 MiB (`payload_too_large`).",
    422: "A field, parameter or header is invalid (`invalid_input` and kin), named in `field`.",
}


def error_statuses(method: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation of the API can answer, from what it takes.

    Guarded operations (``x-roles``) answer 401 and 403; anything taking parameters or a body
    422; a body also 400 (malformed JSON) and 413; a path parameter, or a body naming other
    things (a write), 404; a write 409.
    """
    params = operation.get("parameters", [])
    body = "requestBody" in operation
    write = method in ("post", "put", "patch", "delete")
    codes = set()
    if "x-roles" in operation:
        codes |= {401, 403}
    if params or body:
        codes.add(422)
    if body:
        codes |= {400, 413}
    if write or any(p.get("in") == "path" for p in params):
        codes.add(404)
    if write:
        codes.add(409)
    return sorted(codes)


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Add every error an operation can answer to the OpenAPI ``schema``, with :class:`ErrorOut`
    as its body, and drop FastAPI's default 422 model (the API never answers with it)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorOut"] = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(components["ErrorOut"].pop("$defs", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for code in error_statuses(method, operation):
                responses[str(code)] = {"description": WHY[code], "content": ref}
            operation["responses"] = dict(sorted(responses.items()))
    return schema
