"""Outcome values made storable: whatever a provider answered or a hook returned, the row that
records it can always be written, and never more than a documented size.

PostgreSQL refuses NUL characters in text and JSON, JSON refuses lone surrogates, orjson refuses
integers beyond 64 bits, and a multi-megabyte answer would bloat the log. One such value used to
make the statement that records a whole batch fail, so every message of the batch went out again
after its lease. Here each batch row is serialised on its own: the common row costs one orjson
call; a row that fails or is larger than MAX_JSON is cleaned (NUL → U+FFFD, lone surrogates →
U+FFFD, big integers and non-JSON values → text, deep nesting cut) and capped: an execution's
``payload`` and ``response`` keep at most MAX_JSON (64 KiB) of JSON each — a larger one is stored
as ``{"truncated": true, "bytes": n, "preview": "<first 2,000 characters>"}`` — and its
``error_message`` and ``recipient`` at most MAX_TEXT characters. Secrets are scrubbed from
answers and errors before they get here (:mod:`dripdrop.channels.secrets`), so no cut can leave
half a token behind.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

# Caps on what one execution row keeps: its text fields at most MAX_TEXT characters, its payload
# and response at most MAX_JSON bytes of JSON each. A row whose whole JSON fits in MAX_JSON cannot
# exceed either, so only larger rows pay for the field-by-field check.
MAX_TEXT = 4000  # error_message, recipient
MAX_JSON = 64 * 1024  # payload, response
MAX_DEPTH = 32
_PREVIEW = 2000

_OPTIONS = orjson.OPT_NON_STR_KEYS
_SURROGATE = re.compile("[\ud800-\udfff]")


def _default(value: Any) -> str:
    return str(value)


def clean_text(value: str, limit: int = MAX_TEXT) -> str:
    """Text PostgreSQL accepts: no NUL, no lone surrogate, at most ``limit`` characters."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = _SURROGATE.sub("\ufffd", value)
    if len(value) > limit:
        value = f"{value[: limit - 40]}… ({len(value)} characters, cut)"
    return value


def clean_json(value: Any, depth: int = 0) -> Any:
    """A JSON value PostgreSQL's jsonb accepts, built from anything."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return clean_text(value, MAX_JSON)
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= MAX_DEPTH:
        return clean_text(repr(value), _PREVIEW)
    if isinstance(value, dict):
        return {clean_text(str(k), 256): clean_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [clean_json(v, depth + 1) for v in value]
    return clean_text(_default(value), MAX_JSON)


def capped_json(value: Any) -> Any:
    """``value`` cleaned; if its JSON is larger than MAX_JSON, a note with a preview instead."""
    value = clean_json(value)
    data = orjson.dumps(value, option=_OPTIONS)
    if len(data) <= MAX_JSON:
        return value
    text = data.decode()
    return {"truncated": True, "bytes": len(data), "preview": text[:_PREVIEW]}


def _fits(row: dict[str, Any], data: bytes) -> bool:
    # The escape may be a false alarm (an escaped backslash before "u0000"): that row is only
    # cleaned for nothing. A text's JSON takes at least a byte per character, so a row whose
    # JSON is at most MAX_TEXT bytes (the common row) holds no text longer than that.
    if len(data) > MAX_JSON or b"\\u0000" in data:
        return False
    return len(data) <= MAX_TEXT or all(
        len(v) <= MAX_TEXT for v in row.values() if isinstance(v, str)
    )


def clean_row(row: dict[str, Any]) -> dict[str, Any]:
    """A FINISH batch row whose values are all storable."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in ("payload", "response"):
            out[key] = capped_json(value)
        elif isinstance(value, str):
            out[key] = clean_text(value)
        else:
            out[key] = value
    return out


def dump_row(row: dict[str, Any]) -> bytes:
    """One batch row as JSON, cleaned first only when it needs to be."""
    try:
        data = orjson.dumps(row, default=_default, option=_OPTIONS)
        if _fits(row, data):
            return data
    except (TypeError, orjson.JSONEncodeError):
        pass
    return orjson.dumps(clean_row(row), default=_default, option=_OPTIONS)


def dump_rows(rows: list[dict[str, Any]]) -> str:
    """The batch parameter: a JSON array of storable rows."""
    return (b"[" + b",".join(map(dump_row, rows)) + b"]").decode()
