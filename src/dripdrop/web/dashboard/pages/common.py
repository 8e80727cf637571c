"""What the page modules share: the router factory, calling operations off the event loop,
who is signed in and the records they may see, redirects and reading form fields.

Tenants: a session signed in with a tenant-bound admin key is bound to that tenant
(``who(request).bound``). Every list a page shows is read with ``tenant(request)`` and every
record a URL or a form names is fetched through the lookups below, which answer NotFound (a 404
page) for another tenant's row — the same checks as the REST API (``Principal.owns``). A global
session (a global admin key, or a host's ``authorize``) works on global definitions and can open
any record by its id, as before."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from dripdrop.errors import ValidationError
from dripdrop.web.auth import Principal
from dripdrop.web.dashboard.security import (
    DashboardRoute,
    LoginRequired,
    base,
    read_form,
    signed_in,
)


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


def who(request: Request) -> Principal:
    """The signed-in principal, set by ``signed_in`` (a request without it is sent to sign in:
    nothing defaults to every tenant)."""
    principal = getattr(request.state, "who", None)
    if principal is None:
        raise LoginRequired
    return principal


def tenant(request: Request) -> str | None:
    """The tenant whose definitions the session lists and creates: a bound session's own, None
    (global definitions) otherwise."""
    principal = who(request)
    return principal.tenant_key if principal.bound else None


async def lookup(request: Request, finder: Any, record_id: Any) -> Any:
    """A record by id through one of the REST API's lookups (``sequence``, ``version``,
    ``step_of``, ``enrollment`` …): NotFound for an unknown id or another tenant's row, a
    ValidationError naming the argument for a malformed one."""
    return await run_in_threadpool(finder, request, who(request), str(record_id))


async def sequence_of(request: Request, sequence_id: Any) -> Any:
    from dripdrop.web.routes.sequences import sequence

    return await lookup(request, sequence, sequence_id)


async def version_of(request: Request, version_id: Any) -> Any:
    from dripdrop.web.routes.sequences import version

    return await lookup(request, version, version_id)


async def step_of(request: Request, step_id: Any) -> Any:
    from dripdrop.web.routes.definitions import step_of as find

    return await lookup(request, find, step_id)


async def condition_of(request: Request, condition_id: Any) -> Any:
    from dripdrop.web.routes.definitions import condition_of as find

    return await lookup(request, find, condition_id)


async def adapter_of(request: Request, adapter_id: Any) -> Any:
    from dripdrop.web.routes.definitions import adapter_of as find

    return await lookup(request, find, adapter_id)


async def hook_of(request: Request, hook_id: Any) -> Any:
    from dripdrop.web.routes.definitions import hook_of as find

    return await lookup(request, find, hook_id)


async def enrollment_of(request: Request, enrollment_id: Any) -> Any:
    from dripdrop.web.routes.enrollments import enrollment

    return await lookup(request, enrollment, enrollment_id)


async def execution_of(request: Request, execution_id: Any) -> Any:
    from dripdrop.web.routes.executions import execution

    return await lookup(request, execution, execution_id)


async def check_adapters(request: Request, values: dict[str, Any]) -> None:
    """A bound session may pin steps only to its own tenant's adapters (another tenant's is
    reported as not existing, on the field that names it)."""
    from dripdrop.web.routes.definitions import check_adapters as check

    await run_in_threadpool(check, request, who(request), values)


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
