"""One-click unsubscribe (RFC 8058): ``GET /u/{token}`` confirms, ``POST /u/{token}`` acts.

Public: no API key — the signed token (engine/unsubscribe.py) is the authority, checked without
a database lookup. ``POST`` takes the one-click body mail providers send
(``List-Unsubscribe=One-Click``) or the confirmation page's form, and writes the ``unsubscribe``
suppression and ends the subscriber's enrollments of that category in one transaction. A bad,
altered or expired token gets a small page with 400 or 410, never an error of the server. Pages
are autoescaped Jinja2 templates shipped in the package, with no external assets; they are never
cached and send no referrer (the token is in the URL).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from dripdrop.engine.unsubscribe import TokenError, UnsubscribeClaim, signer, unsubscribe
from dripdrop.errors import ValidationError
from dripdrop.web.routes.common import dd_of

router = APIRouter(tags=["unsubscribe"], include_in_schema=False)
log = logging.getLogger("dripdrop.web")

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent.parent / "pages"),
        autoescape=True,
    )
    return env.get_template("unsubscribe.html")


def _page(status: int, **values: Any) -> HTMLResponse:
    return HTMLResponse(_template().render(**values), status_code=status, headers=_HEADERS)


def _scope(claim: UnsubscribeClaim) -> str:
    return f"{claim.category} emails" if claim.category else "these emails"


def _claim(request: Request, token: str) -> UnsubscribeClaim | HTMLResponse:
    rt = dd_of(request).runtime
    try:
        return signer(rt).verify(token, rt.now())
    except TokenError as exc:
        if exc.expired:
            return _page(410, title="This link has expired", state="error", message=str(exc))
        return _page(400, title="This link is not valid", state="error", message=str(exc))


@router.get("/u/{token}", response_class=HTMLResponse)
def confirm(token: str, request: Request) -> HTMLResponse:
    """The confirmation page: who would be unsubscribed from what, and the button."""
    claim = _claim(request, token)
    if isinstance(claim, HTMLResponse):
        return claim
    return _page(
        200, title="Unsubscribe", state="confirm", recipient=claim.recipient, scope=_scope(claim)
    )


@router.post("/u/{token}", response_class=HTMLResponse)
def one_click(token: str, request: Request) -> HTMLResponse:
    """Unsubscribe at once (RFC 8058 one-click, or the page's form). Repeats change nothing."""
    claim = _claim(request, token)
    if isinstance(claim, HTMLResponse):
        return claim
    dd = dd_of(request)
    try:
        with dd.runtime.engine.begin() as conn:
            ended = unsubscribe(dd.runtime, conn, claim)
    except ValidationError as exc:  # a signed value this version cannot store
        return _page(400, title="This link is not valid", state="error", message=str(exc))
    log.info(
        "unsubscribe (%s, category %s): %d enrollment(s) ended",
        claim.channel,
        claim.category,
        ended,
    )
    return _page(
        200,
        title="You are unsubscribed",
        state="done",
        recipient=claim.recipient,
        scope=_scope(claim),
    )
