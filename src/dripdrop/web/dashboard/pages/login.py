"""Signing in with an ``admin`` API key (global, or bound to a tenant), and out."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from dripdrop.definitions.api_keys import authenticate
from dripdrop.web.dashboard import session as sessions
from dripdrop.web.dashboard.pages.common import Form, redirect, router, run
from dripdrop.web.dashboard.render import page
from dripdrop.web.dashboard.security import Refused, base, read_form

public = router(public=True)


def _next(value: str | None) -> str:
    """Only a path of the dashboard itself (never another site) is followed after sign-in."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _login_page(
    request: Request, session: sessions.Session, error: str | None, status: int
) -> Response:
    request.state.session = session
    response = page(
        request,
        "login.html",
        status,
        section=None,
        error=error,
        next=_next(request.query_params.get("next")),
    )
    sessions.save(request, response, session)
    return response


@public.get("/login")
async def login_form(request: Request) -> Response:
    if request.app.state.authorize is not None:
        return redirect(request, "/")
    return _login_page(request, sessions.load(request) or sessions.Session.new(), None, 200)


@public.post("/login")
async def login(request: Request) -> Response:
    if request.app.state.authorize is not None:
        raise Refused("sign in through the host application")
    pending = sessions.load(request)
    form = Form(await read_form(request))
    # The sign-in form carries the CSRF token of the visitor's pre-login session.
    if pending is None or form.get("csrf_token") != pending.csrf:
        return _login_page(
            request, sessions.Session.new(), "Your session expired: please sign in again.", 403
        )
    token = form.get("api_key").strip()
    rt = request.app.state.dd.runtime

    def check() -> object:
        with rt.engine.begin() as conn:
            return authenticate(rt, conn, token)

    key = await run(check) if token else None
    if key is None:
        return _login_page(request, pending, "That API key is not valid (or was revoked).", 401)
    if "admin" not in key.scopes:
        return _login_page(
            request,
            pending,
            "The dashboard needs an admin key: dripdrop api-key create NAME --scope admin",
            403,
        )
    # A key bound to a tenant signs in to that tenant's dashboard (security.signed_in reads
    # the tenant from the key's row on every request).
    response = Response(
        status_code=303, headers={"Location": base(request) + _next(form.get("next"))}
    )
    # A new session (new CSRF token) at sign-in: one fixed before it is worth nothing after.
    sessions.save(request, response, sessions.Session.new(str(key.id)))
    return response


@public.post("/logout")
async def logout(request: Request) -> Response:
    session = sessions.load(request)
    form = Form(await read_form(request))
    if session is not None and form.get("csrf_token") != session.csrf:
        raise Refused("missing or wrong CSRF token")
    response = Response(status_code=303, headers={"Location": base(request) + "/login"})
    sessions.clear(request, response)
    return response
