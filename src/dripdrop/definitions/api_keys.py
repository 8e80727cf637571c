"""API keys of the REST API: created with their token shown once, stored as a hash.

Scopes: ``read`` (lists and lookups), ``write`` (enroll, events, definitions of sequences and
steps), ``admin`` (adapters, HTTP hooks, keys; implies the others). A key bound to a tenant sees
and touches only that tenant's rows.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import Connection, select, update

from dripdrop.db import models as m
from dripdrop.definitions.common import get_row, raise_if, require_text
from dripdrop.definitions.inputs import check_bool, check_tenant, describe
from dripdrop.errors import ValidationError
from dripdrop.records import ApiKey, from_row
from dripdrop.runtime import Runtime

K = m.ApiKey.__table__

SCOPES = ("read", "write", "admin")
# What each scope grants: admin implies write, write implies read.
IMPLIED = {"read": {"read"}, "write": {"read", "write"}, "admin": {"read", "write", "admin"}}
TOKEN_PREFIX = "dd_"


def hash_token(token: str) -> bytes:
    """SHA-256 of the whole token (256 random bits: a slow hash would add nothing)."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def _scopes(scopes: Any) -> list[str]:
    if isinstance(scopes, str):
        scopes = [scopes]
    if not isinstance(scopes, list | tuple | set | frozenset) or not scopes:
        raise ValidationError.single("scopes", f"must be a list of {', '.join(SCOPES)}")
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise ValidationError.single(
            "scopes", f"unknown scope {describe(bad[0])}; expected {', '.join(SCOPES)}"
        )
    return sorted(set(scopes), key=SCOPES.index)


def create_api_key(
    rt: Runtime,
    conn: Connection,
    name: str,
    scopes: Any = ("read",),
    *,
    tenant_key: str | None = None,
) -> ApiKey:
    """A new key; its ``secret`` (the Bearer token) is in this record only, never again."""
    errors: dict[str, list[str]] = {}
    require_text(name, "name", errors)
    raise_if(errors)
    granted = _scopes(scopes)
    check_tenant(tenant_key)
    prefix = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    now = rt.now()
    row = conn.execute(
        K.insert()
        .values(
            name=name,
            prefix=prefix,
            token_hash=hash_token(token),
            scopes=granted,
            tenant_key=tenant_key,
            inserted_at=now,
            updated_at=now,
        )
        .returning(K)
    ).one()
    return from_row(ApiKey, row, secret=token)


def list_api_keys(rt: Runtime, conn: Connection, *, include_revoked: bool = False) -> list[ApiKey]:
    """Every key (without its token), newest first."""
    check_bool(include_revoked, "include_revoked")
    stmt = select(K).order_by(K.c.inserted_at.desc(), K.c.id)
    if not include_revoked:
        stmt = stmt.where(K.c.revoked_at.is_(None))
    return [from_row(ApiKey, r) for r in conn.execute(stmt)]


def revoke_api_key(rt: Runtime, conn: Connection, key_id: Any) -> ApiKey:
    """Revoke a key at once (idempotent); its requests get 401 from now on."""
    row = get_row(conn, K, key_id, "key")
    if row.revoked_at is None:
        now = rt.now()
        row = conn.execute(
            update(K).where(K.c.id == row.id).values(revoked_at=now, updated_at=now).returning(K)
        ).one()
    return from_row(ApiKey, row)


def authenticate(rt: Runtime, conn: Connection, token: str) -> ApiKey | None:
    """The live key whose token this is, or None (unknown, malformed, revoked). The hash is
    compared in constant time; the prefix only finds the row."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    prefix = token[len(TOKEN_PREFIX) :].split("_", 1)[0]
    row = conn.execute(select(K).where(K.c.prefix == prefix)).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(bytes(row.token_hash), hash_token(token)):
        return None
    return from_row(ApiKey, row)
