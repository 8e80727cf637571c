"""Who is calling: an API key (Bearer token) or, when the app is mounted, the host's own check.

Every route but ``/health`` depends on :func:`require`. A key bound to a tenant is a
:class:`Principal` with that ``tenant_key``: routes use :meth:`Principal.owns` to answer 404 for
another tenant's rows, and :meth:`Principal.tenant_for` to refuse a body that names another
tenant.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from dripdrop.definitions.api_keys import IMPLIED, authenticate, hash_token
from dripdrop.errors import NotFound, ValidationError

_ANY_TENANT = object()


@dataclass(frozen=True)
class Principal:
    """The caller: its scopes, and the tenant it is bound to (``bound=False``: any tenant)."""

    scopes: frozenset[str]
    tenant_key: str | None = None
    bound: bool = False
    key_id: Any = None

    def owns(self, record: Any) -> Any:
        """``record`` itself, or NotFound when it belongs to another tenant (a 404, never a
        403: a bound key must not learn that the row exists)."""
        if self.bound and getattr(record, "tenant_key", None) != self.tenant_key:
            raise NotFound("not found")
        return record

    def tenant_for(self, requested: Any = _ANY_TENANT) -> str | None:
        """The tenant a write goes to: a bound key's own; another one named in the body is a 422."""
        if not self.bound:
            return None if requested is _ANY_TENANT else requested
        if requested is not _ANY_TENANT and requested is not None and requested != self.tenant_key:
            raise ValidationError.single("tenant_key", "this API key is bound to another tenant")
        return self.tenant_key


#: How long a checked token is trusted without asking the database again: a revoked key stops
#: working within this many seconds on every server (at once on the one that revoked it).
KEY_CACHE_SECONDS = 5.0


async def _known_key(state: Any, token: str) -> Any:
    """The live key of ``token`` (None if unknown or revoked), from a short per-app cache keyed
    by the token's hash: most requests then cost no database round trip for their key."""
    cache: dict[bytes, tuple[float, Any]] = state.key_cache
    digest = hash_token(token)
    hit = cache.get(digest)
    now = time.monotonic()
    if hit is not None and now - hit[0] < KEY_CACHE_SECONDS:
        return hit[1]
    rt = state.dd.runtime

    def check() -> Any:
        with rt.engine.begin() as conn:
            return authenticate(rt, conn, token)

    key = await run_in_threadpool(check)
    if len(cache) > 10_000:  # tokens are few; a flood of wrong ones must not grow it forever
        cache.clear()
    cache[digest] = (now, key)
    return key


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def principal(request: Request) -> Principal:
    """The caller, or 401."""
    state = request.app.state
    authorize: Callable[[Request], Any] | None = state.authorize
    token = _token(request)
    if token is None and authorize is not None:
        allowed = authorize(request)
        if hasattr(allowed, "__await__"):
            allowed = await allowed
        if allowed:
            return Principal(frozenset(IMPLIED["admin"]))
    if token is None:
        raise HTTPException(401, "missing API key: send Authorization: Bearer <token>")
    key = await _known_key(state, token)
    if key is None:
        raise HTTPException(401, "invalid or revoked API key")
    granted: set[str] = set()
    for scope in key.scopes:
        granted |= IMPLIED.get(scope, set())
    return Principal(
        frozenset(granted), key.tenant_key, bound=key.tenant_key is not None, key_id=key.id
    )


def require(scope: str) -> Any:
    """A dependency: the caller, who must hold ``scope`` (403 otherwise)."""

    async def dependency(who: Principal = Depends(principal)) -> Principal:
        if scope not in who.scopes:
            raise HTTPException(403, f"this API key lacks the {scope!r} scope")
        return who

    return Depends(dependency)
