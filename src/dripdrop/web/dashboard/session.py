"""The dashboard's session: one cookie, encrypted and authenticated with the instance's key ring.

The cookie holds who signed in (an API key's id, never its token), a CSRF token and when it was
issued. AES-GCM (the same key ring as stored credentials) makes it unreadable and unforgeable;
every server of one deployment shares the key, so any of them accepts it, and rotating the
encryption key keeps old sessions valid while the old key stays in the ring.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

COOKIE = "dripdrop_session"
#: A session ends this long after sign-in, whatever happens in between.
MAX_AGE_SECONDS = 12 * 3600
_AAD = b"dripdrop dashboard session v1"


@dataclass(frozen=True)
class Session:
    """``key_id`` is None for a visitor who has not signed in (or under a host's ``authorize``)."""

    csrf: str
    key_id: str | None = None
    issued: float = 0.0

    @classmethod
    def new(cls, key_id: str | None = None) -> Session:
        return cls(csrf=secrets.token_urlsafe(32), key_id=key_id, issued=time.time())


def _keyring(request: Request) -> Any:
    return request.app.state.dd.runtime.keyring


def load(request: Request) -> Session | None:
    """The request's session, or None (absent, tampered with, made with an unknown key, expired)."""
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 4096:
        return None
    try:
        blob = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        data = _keyring(request).decrypt_json(blob, aad=_AAD)
    except Exception:  # malformed, tampered with or made with a key no longer in the ring
        return None
    if not isinstance(data, dict) or not isinstance(data.get("c"), str):
        return None
    issued = data.get("i")
    if not isinstance(issued, int | float) or not 0 <= time.time() - issued < MAX_AGE_SECONDS:
        return None
    key_id = data.get("k")
    return Session(
        csrf=data["c"], key_id=key_id if isinstance(key_id, str) else None, issued=issued
    )


def save(request: Request, response: Response, session: Session) -> None:
    """Set the cookie: HttpOnly, SameSite=Lax, Secure when served over https, scoped to the
    dashboard's mount path."""
    blob = _keyring(request).encrypt_json(
        {"c": session.csrf, "k": session.key_id, "i": session.issued}, aad=_AAD
    )
    response.set_cookie(
        COOKIE,
        base64.urlsafe_b64encode(blob).decode("ascii").rstrip("="),
        max_age=MAX_AGE_SECONDS,
        path=cookie_path(request),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path=cookie_path(request), httponly=True, samesite="lax")


def cookie_path(request: Request) -> str:
    return (request.scope.get("root_path") or "").rstrip("/") + "/"
