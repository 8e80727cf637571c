"""HTTP hooks: outbound calls whose answers feed conditions and templates."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from dripdrop.datapath import path_error
from dripdrop.db import models as m
from dripdrop.definitions.common import as_uuid, check_key, get_row, raise_if, require_text, touch
from dripdrop.definitions.inputs import (
    boolean,
    check_all,
    json_dict,
    text,
)
from dripdrop.definitions.secrets import seal, unseal
from dripdrop.definitions.steps import check_templates
from dripdrop.errors import ValidationError
from dripdrop.net.policy import MAX_TIMEOUT_MS
from dripdrop.records import HttpHook, from_row
from dripdrop.runtime import Runtime

H = m.HttpHook.__table__
S = m.Sequence.__table__

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
AUTH_TYPES = ("none", "bearer", "basic", "header")
RESPONSE_TYPES = ("json", "text", "number", "boolean")
_AUTH_FIELDS = {
    "bearer": ("token",),
    "basic": ("username", "password"),
    "header": ("name", "value"),
}
# RFC 9110 token characters; a value must not break the header line (no CR, LF or NUL).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")
_HEADER_VALUE = re.compile(r"[^\r\n\x00]{0,8192}")

# The type checks of each field, shared by create and update (the meaning is checked after).
HOOK_FIELDS = {
    "url": text(8_192),
    "method": text(10),
    "auth_type": text(16),
    "auth_config": json_dict(max_size=100_000),
    "headers": json_dict(max_size=100_000),
    "body_template": text(optional=True),
    "response_path": text(1_000, optional=True),
    "response_type": text(16),
    "description": text(optional=True),
    "active": boolean(),
}


def hook_record(rt: Runtime, row: Any) -> HttpHook:
    auth = unseal(rt, "http_hooks", "auth_config", row.id, row.auth_config)
    return from_row(HttpHook, row, auth_config=auth)


def validate_hook(values: dict[str, Any]) -> None:
    """Collect every problem of an HTTP hook definition."""
    errors: dict[str, list[str]] = {}
    require_text(values.get("name"), "name", errors)
    url = values.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        errors["url"] = ["must be an http:// or https:// URL (it may contain {{ variables }})"]
    method = str(values.get("method", "POST")).upper()
    if method not in METHODS:
        errors["method"] = [f"must be one of {', '.join(METHODS)}"]
    auth_type = values.get("auth_type", "none")
    if auth_type not in AUTH_TYPES:
        errors["auth_type"] = [f"must be one of {', '.join(AUTH_TYPES)}"]
    else:
        auth = values.get("auth_config") or {}
        if not isinstance(auth, dict):
            errors["auth_config"] = ["must be a dict"]
        else:
            for f in _AUTH_FIELDS.get(auth_type, ()):
                if not auth.get(f):
                    errors[f"auth_config.{f}"] = [f"is required for auth_type {auth_type!r}"]
    if values.get("response_type", "json") not in RESPONSE_TYPES:
        errors["response_type"] = [f"must be one of {', '.join(RESPONSE_TYPES)}"]
    timeout = values.get("timeout_ms", 5000)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int)
        or not 1 <= timeout <= MAX_TIMEOUT_MS
    ):
        errors["timeout_ms"] = [f"must be an integer from 1 to {MAX_TIMEOUT_MS}"]
    retries = values.get("retry_count", 2)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        errors["retry_count"] = ["must be an integer from 0 to 10"]
    headers = values.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str)
        and _HEADER_NAME.fullmatch(k)
        and isinstance(v, str)
        and _HEADER_VALUE.fullmatch(v)
        for k, v in headers.items()
    ):
        errors["headers"] = [
            "must map header names (letters, digits and !#$%&'*+.^_`|~-) to strings "
            "without line breaks"
        ]
    try:
        check_templates(
            {
                "url": url if isinstance(url, str) else "",
                "body_template": values.get("body_template") or "",
            },
            field_prefix="",
        )
    except ValidationError as exc:
        errors.update({k.lstrip("."): v for k, v in exc.errors.items()})
    path = values.get("response_path")
    if isinstance(path, str) and (problem := path_error(path)):
        errors["response_path"] = [problem]
    raise_if(errors)


def create_http_hook(
    rt: Runtime,
    conn: Connection,
    sequence_id: Any,
    *,
    name: str,
    key: str,
    url: str,
    method: str = "POST",
    auth_type: str = "none",
    auth_config: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    body_template: str | None = None,
    response_path: str | None = None,
    response_type: str = "json",
    timeout_ms: int = 5000,
    retry_count: int = 2,
    description: str | None = None,
    active: bool = True,
) -> HttpHook:
    """Store an HTTP hook for a sequence; ``auth_config`` is encrypted."""
    seq = get_row(conn, S, sequence_id, "sequence")
    check_all(
        dict(
            url=url,
            method=method,
            auth_type=auth_type,
            auth_config=auth_config,
            headers=headers,
            body_template=body_template,
            response_path=response_path,
            response_type=response_type,
            description=description,
            active=active,
        ),
        HOOK_FIELDS,
    )
    values = dict(
        name=name,
        url=url,
        method=method,
        auth_type=auth_type,
        auth_config=auth_config,
        headers=headers,
        body_template=body_template,
        response_path=response_path,
        response_type=response_type,
        timeout_ms=timeout_ms,
        retry_count=retry_count,
    )
    validate_hook(values)
    check_key(key)
    if conn.execute(select(H.c.id).where(H.c.sequence_id == seq.id, H.c.key == key)).first():
        raise ValidationError.single("key", f"an HTTP hook with key {key!r} already exists")
    row_id = uuid.uuid4()
    row = conn.execute(
        insert(H)
        .values(
            id=row_id,
            sequence_id=seq.id,
            name=name,
            key=key,
            url=url,
            method=method.upper(),
            auth_type=auth_type,
            auth_config=seal(rt, "http_hooks", "auth_config", row_id, auth_config),
            headers=headers or {},
            body_template=body_template,
            response_path=response_path,
            response_type=response_type,
            timeout_ms=timeout_ms,
            retry_count=retry_count,
            description=description,
            active=active,
            tenant_key=seq.tenant_key,
        )
        .returning(H)
    ).one()
    return hook_record(rt, row)


def update_http_hook(rt: Runtime, conn: Connection, hook_id: Any, **changes: Any) -> HttpHook:
    """Change an HTTP hook; ``auth_config`` given is replaced whole."""
    row = get_row(conn, H, hook_id, "HTTP hook")
    allowed = {
        "name",
        "url",
        "method",
        "auth_type",
        "auth_config",
        "headers",
        "body_template",
        "response_path",
        "response_type",
        "timeout_ms",
        "retry_count",
        "description",
        "active",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({k: ["cannot be changed"] for k in unknown})
    check_all(changes, HOOK_FIELDS)
    if "headers" in changes and changes["headers"] is None:
        changes["headers"] = {}  # the column is NOT NULL: None means "no headers"
    current = hook_record(rt, row)
    merged = {k: getattr(row, k) for k in allowed if k != "auth_config"}
    merged["auth_config"] = current.auth_config.reveal()
    merged.update(changes)
    validate_hook(merged)
    if "auth_config" in changes:
        changes["auth_config"] = seal(
            rt, "http_hooks", "auth_config", row.id, changes["auth_config"]
        )
    if "method" in changes:
        changes["method"] = str(changes["method"]).upper()
    return hook_record(rt, touch(conn, H, row.id, rt.now(), **changes))


def delete_http_hook(rt: Runtime, conn: Connection, hook_id: Any) -> None:
    """Delete an HTTP hook (conditions using it are deleted too)."""
    row = get_row(conn, H, hook_id, "HTTP hook")
    conn.execute(delete(H).where(H.c.id == row.id))


def get_http_hook(rt: Runtime, conn: Connection, hook_id: Any) -> HttpHook:
    """One HTTP hook by id."""
    return hook_record(rt, get_row(conn, H, hook_id, "HTTP hook"))


def list_http_hooks(rt: Runtime, conn: Connection, sequence_id: Any) -> list[HttpHook]:
    """The HTTP hooks of a sequence, by key."""
    rows = conn.execute(
        select(H).where(H.c.sequence_id == as_uuid(sequence_id, "sequence_id")).order_by(H.c.key)
    )
    return [hook_record(rt, r) for r in rows]
