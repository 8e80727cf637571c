"""Who may see the dashboard, and the headers and checks every page gets.

- Standalone, a visitor signs in with an ``admin`` API key; the session cookie then names the
  key, which is checked again (revoked keys stop working within ``KEY_CACHE_SECONDS``). A key
  bound to a tenant makes a session of that tenant: every page reads and writes that tenant's
  rows only (another tenant's are "not found"), as the REST API does for such a key. The tenant
  comes from the key's row, never from the cookie.
- Mounted with ``create_app(dd, authorize=...)``, the host's check replaces the sign-in (a
  global session).
- Every request that is not GET/HEAD must carry the session's CSRF token (htmx sends it in the
  ``X-CSRF-Token`` header, forms in a hidden ``csrf_token`` field) and must not come from another
  site (``Origin`` / ``Sec-Fetch-Site``).
- Every answer has a strict Content-Security-Policy: scripts and styles only from the
  dashboard's own static files, no frames of it elsewhere.
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from sqlalchemy import select

from dripdrop.db import models as m
from dripdrop.definitions.api_keys import IMPLIED
from dripdrop.errors import DripDropError, NotFound, ValidationError
from dripdrop.web.auth import Principal
from dripdrop.web.dashboard import session as sessions

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
#: How long a signed-in key is trusted without asking the database again.
KEY_CACHE_SECONDS = 5.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
K = m.ApiKey.__table__
#: Who a global session is (a global admin key, or a host's ``authorize``): every tenant.
GLOBAL_ADMIN = Principal(frozenset(IMPLIED["admin"]))


class LoginRequired(Exception):
    """No valid session: the visitor is sent to the sign-in page."""


class Refused(Exception):
    """A request the dashboard will not serve (403): a missing CSRF token, a cross-site post,
    a host's ``authorize`` saying no."""


def base(request: Request) -> str:
    """The path the dashboard is served under ("" at the root of a standalone app)."""
    return (request.scope.get("root_path") or "").rstrip("/")


def local_path(request: Request) -> str:
    """The request's path inside the dashboard (without the mount prefix)."""
    path, prefix = request.url.path, base(request)
    return path[len(prefix) :] or "/" if prefix and path.startswith(prefix) else path


def _live_admin_key(request: Request, key_id: str) -> Principal | None:
    """Who the session's key makes the visitor, while it is a live admin key (None once it is
    revoked, gone or no longer admin); cached briefly per app. A key bound to a tenant gives a
    principal bound to it."""
    state = request.app.state
    cache: dict[str, tuple[float, Principal | None]] = state.dashboard_keys
    hit = cache.get(key_id)
    now = time.monotonic()
    if hit is not None and now - hit[0] < KEY_CACHE_SECONDS:
        return hit[1]
    try:
        kid = uuid.UUID(key_id)
    except ValueError:
        return None
    with state.dd.runtime.engine.begin() as conn:
        row = conn.execute(
            select(K.c.scopes, K.c.tenant_key, K.c.revoked_at).where(K.c.id == kid)
        ).first()
    who = None
    if row is not None and row.revoked_at is None and "admin" in row.scopes:
        who = Principal(
            GLOBAL_ADMIN.scopes, row.tenant_key, bound=row.tenant_key is not None, key_id=kid
        )
    if len(cache) > 1000:
        cache.clear()
    cache[key_id] = (now, who)
    return who


async def read_form(request: Request) -> dict[str, list[str]]:
    """The url-encoded body of a form post (the only kind the dashboard sends); cached."""
    cached = getattr(request.state, "form", None)
    if cached is not None:
        return cached
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    form: dict[str, list[str]] = {}
    if ctype == "application/x-www-form-urlencoded" and body:
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    request.state.form = form
    return form


def _same_site(request: Request) -> bool:
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    own = urlsplit(str(request.base_url))
    theirs = urlsplit(origin)
    return (theirs.scheme, theirs.netloc) == (own.scheme, own.netloc)


async def _check_csrf(request: Request, session: sessions.Session) -> None:
    if request.method in SAFE_METHODS:
        return
    if not _same_site(request):
        raise Refused("cross-site request refused")
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        sent = ((await read_form(request)).get("csrf_token") or [""])[0]
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise Refused("missing or wrong CSRF token: reload the page and try again")


async def signed_in(request: Request) -> sessions.Session:
    """A dependency of every dashboard page: the session, or LoginRequired / Refused. Sets
    ``request.state.who``, the :class:`Principal` every page scopes its reads and writes by."""
    authorize: Callable[[Request], Any] | None = request.app.state.authorize
    session = sessions.load(request)
    if authorize is not None:
        allowed = authorize(request)
        if hasattr(allowed, "__await__"):
            allowed = await allowed
        if not allowed:
            raise Refused("the host application did not allow this request")
        if session is None:
            session = sessions.Session.new()
            request.state.new_session = session
    elif session is None or session.key_id is None:
        raise LoginRequired
    who = GLOBAL_ADMIN
    if authorize is None:
        key = await run_in_threadpool(_live_admin_key, request, session.key_id)
        if key is None:
            raise LoginRequired
        who = key
    request.state.who = who
    request.state.session = session
    await _check_csrf(request, session)
    return session


def with_headers(response: Response, *, frame_self: bool = False) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if frame_self:
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


class DashboardRoute(APIRoute):
    """A dashboard route: security headers on every answer; a missing session becomes a
    redirect to the sign-in page, the library's errors an HTML page instead of problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            from dripdrop.web.dashboard.render import error_page

            try:
                response = await handler(request)
            except LoginRequired:
                target = f"{base(request)}/login?next={quote(local_path(request), safe='/')}"
                if request.headers.get("hx-request"):
                    response = Response(status_code=401, headers={"HX-Redirect": target})
                else:
                    response = Response(status_code=303, headers={"Location": target})
            except Refused as exc:
                response = error_page(request, 403, "Not allowed", str(exc))
            except NotFound as exc:
                response = error_page(request, 404, "Not found", str(exc))
            except ValidationError as exc:
                response = error_page(request, 422, "Invalid input", str(exc), exc.errors)
            except DripDropError as exc:
                response = error_page(request, 400, "Could not do that", str(exc))
            new = getattr(request.state, "new_session", None)
            if new is not None:
                sessions.save(request, response, new)
            return with_headers(response)

        return route
