"""Records as JSON: ids as strings, RFC 3339 times, secrets never (write-only fields)."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from dripdrop.crypto import Secret

#: Fields never sent back: the credentials of adapters, HTTP hooks' auth settings, key tokens.
WRITE_ONLY = frozenset({"credentials", "auth_config", "secret", "token_hash"})


def encode(value: Any) -> Any:
    """A JSON-able copy of ``value`` (records, lists, dicts, UUIDs, datetimes)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.name in WRITE_ONLY or isinstance(item, Secret):
                if isinstance(item, Secret):  # say which fields are set, never their values
                    revealed = item.reveal()
                    out[f"{f.name}_set"] = sorted(revealed) if isinstance(revealed, dict) else []
                continue
            out[f.name] = encode(item)
        return out
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [encode(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return json.loads(json.dumps(value, default=str))


def cursor_of(*parts: Any) -> str:
    """An opaque pagination cursor (the sort key of the last item)."""
    raw = json.dumps([encode(p) for p in parts], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def parse_cursor(cursor: str | None, size: int) -> list[Any] | None:
    """The parts of a cursor, or None; a malformed one is a 422 on ``cursor``."""
    from dripdrop.errors import ValidationError

    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
    except (ValueError, TypeError):
        parts = None
    if not isinstance(parts, list) or len(parts) != size:
        raise ValidationError.single("cursor", "is not a cursor this list returned")
    return parts
