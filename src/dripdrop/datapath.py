"""Paths into JSON-like data: dot paths ("address.country", "items.0") and JSONPath ("$.a[0]").

One leaf module, so conditions, HTTP hook responses and validation agree on what a path means.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

_MISSING = object()


@lru_cache(maxsize=1024)
def compiled_jsonpath(path: str) -> Any:
    """A compiled JSONPath, cached (the same paths are read for every execution)."""
    from jsonpath import compile as jp_compile

    return jp_compile(path)


def path_error(path: str) -> str | None:
    """Why ``path`` is not a valid path, or None (dot paths are always valid)."""
    if not path.startswith("$"):
        return None
    from jsonpath import JSONPathError

    try:
        compiled_jsonpath(path)
    except JSONPathError as exc:
        return f"invalid JSONPath: {exc}"
    return None


def _walk(data: Any, path: str) -> Any:
    """The value at a dot path, or _MISSING (so a JSON null is told apart from absence)."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict):
            current = current.get(part, _MISSING)
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            i = int(part)
            current = current[i] if -len(current) <= i < len(current) else _MISSING
        else:
            return _MISSING
        if current is _MISSING:
            return _MISSING
    return current


def lookup(data: Any, path: str) -> Any:
    """The value at ``path`` in ``data``; None when absent. A JSONPath with several matches
    gives the list of them."""
    if "." not in path and isinstance(data, dict) and not path.startswith("$"):
        return data.get(path)  # a top-level field: most conditions, read for every execution
    if path.startswith("$"):
        matches = compiled_jsonpath(path).findall(data)
        if not matches:
            return None
        return matches[0] if len(matches) == 1 else matches
    value = _walk(data, path)
    return None if value is _MISSING else value


def exists(data: Any, path: str) -> bool:
    """Whether ``path`` names something in ``data`` (a JSON null counts as present)."""
    if path.startswith("$"):
        return bool(compiled_jsonpath(path).findall(data))
    return _walk(data, path) is not _MISSING
