"""Errors as ``application/problem+json`` (RFC 9457): one shape for every failure.

``ValidationError`` becomes 422 with ``errors: {field: [messages]}`` as the Python API reports
them; request bodies FastAPI cannot parse get the same shape. No exception reaches a client as
a bare 500 with a traceback: unexpected ones are logged and answered with a problem that says
nothing of the internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from dripdrop.errors import (
    AlreadyEnrolled,
    ConflictError,
    DripDropError,
    NotFound,
    ValidationError,
)

log = logging.getLogger("dripdrop.web")

PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    """A problem+json answer."""
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status}
    body["detail"] = detail
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    # ("body", "subscriber", "id") → "subscriber.id"; ("query", "limit") → "limit"
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path") else loc
    return ".".join(str(p) for p in parts) or "body"


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(ValidationError)
    async def _validation(_: Request, exc: ValidationError) -> JSONResponse:
        return problem(422, str(exc), errors=exc.errors)

    @app.exception_handler(RequestValidationError)
    async def _request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors: dict[str, list[str]] = {}
        for err in exc.errors():
            message = "is required" if err.get("type") == "missing" else str(err.get("msg"))
            errors.setdefault(_field(tuple(err.get("loc", ()))), []).append(message)
        return problem(422, "invalid request", errors=errors)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return problem(404, str(exc))

    @app.exception_handler(AlreadyEnrolled)
    async def _already(_: Request, exc: AlreadyEnrolled) -> JSONResponse:
        return problem(409, str(exc))

    @app.exception_handler(ConflictError)
    async def _conflict(_: Request, exc: ConflictError) -> JSONResponse:
        return problem(409, str(exc))

    @app.exception_handler(DripDropError)
    async def _other(_: Request, exc: DripDropError) -> JSONResponse:
        return problem(400, str(exc))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, "unexpected error; see the server log")
