"""Turning an HTTP hook's response into a value: parse, follow ``response_path``, coerce.

``response_path`` is a dot path ("score", "data.items.0.score") or a JSONPath ("$.data.scores[0]"),
read with :func:`dripdrop.datapath.lookup` so hooks and conditions agree on paths.
"""

from __future__ import annotations

import json
import math
from typing import Any

from dripdrop.datapath import exists, lookup
from dripdrop.errors import PermanentError

RAW_LIMIT = 2048  # bytes of response kept for the log
_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")


def parse_body(text: str, response_type: str, content_type: str) -> Any:
    """The body as JSON when the hook expects structured data or the server says JSON.

    Returns the parsed value, or the text itself when JSON is not required. Raises
    PermanentError for unparseable JSON when ``response_type`` is json; a bare ``72`` or
    ``true`` body is valid JSON, and number/boolean hooks fall back to the text ("yes", "72.5 ").
    """
    wants_json = response_type in ("json", "number", "boolean") or "json" in content_type.lower()
    if wants_json:
        try:
            return json.loads(text)
        except ValueError:
            if response_type == "json":
                raise PermanentError(f"the response is not JSON: {text[:200]!r}") from None
    # number/boolean fall back to the text itself ("72", "yes") and are coerced below.
    return text


def follow_path(data: Any, path: str | None, key: str) -> Any:
    """The value at ``path`` (the whole body for None/""); PermanentError when it is absent."""
    if not path:
        return data
    if isinstance(data, dict | list):
        value = lookup(data, path)
        if value is not None or exists(data, path):
            return value
    raise PermanentError(f"hook {key!r}: the response has nothing at {path!r}")


def _as_number(value: Any) -> int | float | None:
    if isinstance(value, bool):  # True is an int to Python, not a score
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value) if value.is_integer() else value
    return None


def _as_boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
    return None


def coerce(value: Any, response_type: str, key: str, path: str | None) -> Any:
    """Convert the extracted value to ``response_type``; PermanentError naming hook and path."""
    where = path or "the response"
    if response_type == "number":
        number = _as_number(value)
        if number is None:
            raise PermanentError(f"hook {key!r}: expected a number at {where!r}, got {value!r}")
        return number
    if response_type == "boolean":
        flag = _as_boolean(value)
        if flag is None:
            raise PermanentError(f"hook {key!r}: expected a boolean at {where!r}, got {value!r}")
        return flag
    if response_type == "text" and not isinstance(value, str):
        return json.dumps(value) if isinstance(value, dict | list) else str(value)
    return value


def extract(text: str, content_type: str, response_type: str, path: str | None, key: str) -> Any:
    """Parse, follow the path and coerce: the hook's value from its response text."""
    if response_type == "text" and not path:
        return text
    # A text hook with a path reads a field of a JSON answer, so the body must be JSON.
    parse_as = "json" if response_type == "text" else response_type
    try:
        data = parse_body(text, parse_as, content_type)
    except PermanentError as exc:
        raise PermanentError(f"hook {key!r}: {exc}") from None
    return coerce(follow_path(data, path, key), response_type, key, path)


def raw_excerpt(text: str, content_type: str) -> Any:
    """The body for the log: parsed JSON when small enough, else text cut to RAW_LIMIT bytes."""
    if len(text.encode()) <= RAW_LIMIT and ("json" in content_type.lower() or text[:1] in "{["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text.encode()[:RAW_LIMIT].decode(errors="ignore")
