"""What the page modules share: the router factory, calling operations off the event loop,
redirects and reading form fields."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from dripdrop.errors import ValidationError
from dripdrop.web.dashboard.security import DashboardRoute, base, read_form, signed_in


def router(*, public: bool = False) -> APIRouter:
    """A router of dashboard pages (outside the API document); all but the sign-in page
    require a session."""
    return APIRouter(
        route_class=DashboardRoute,
        include_in_schema=False,
        dependencies=[] if public else [Depends(signed_in)],
    )


def dd_of(request: Request) -> Any:
    return request.app.state.dd


async def call(request: Request, operation: str, *args: Any, **kw: Any) -> Any:
    """A public operation of the instance, run on a worker thread (they are blocking)."""
    return await run_in_threadpool(getattr(dd_of(request), operation), *args, **kw)


async def run(fn: Any, *args: Any, **kw: Any) -> Any:
    return await run_in_threadpool(fn, *args, **kw)


def redirect(request: Request, path: str) -> Response:
    """After a successful post: see the result (303, so a reload does not post again)."""
    target = base(request) + path
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return Response(status_code=303, headers={"Location": target})


class Form:
    """A posted form's fields (url-encoded), read once."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    @classmethod
    async def of(cls, request: Request) -> Form:
        return cls(await read_form(request))

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0] if values else default

    def all(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))

    def optional(self, name: str) -> str | None:
        value = self.get(name).strip()
        return value or None

    def flag(self, name: str) -> bool:
        return self.get(name) in ("on", "true", "1", "yes")

    def integer(self, name: str) -> int | str | None:
        """An integer, or the text as typed (the operation then names the field's problem)."""
        value = self.get(name).strip()
        if not value:
            return None
        try:
            return int(value)
        except ValueError:
            return value

    def json(self, name: str, errors: dict[str, list[str]], default: Any = None) -> Any:
        """A JSON field; a syntax error is reported on the field like any other problem."""
        raw = self.get(name).strip()
        if not raw:
            return default
        try:
            return json.loads(raw)
        except ValueError as exc:
            errors.setdefault(name, []).append(f"is not valid JSON ({exc.msg} at {exc.pos})")
            return default

    def values(self) -> dict[str, str]:
        return {k: v[0] for k, v in self.fields.items() if v and k != "csrf_token"}


def parse_id(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError.single(field, "is not an id") from None
