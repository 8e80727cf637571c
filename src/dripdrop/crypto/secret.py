"""Values that refuse to show themselves: ``Secret`` and ``redact``.

Like Starlette's ``Secret``: the value is there for code that asks for it (``reveal()``) but
never appears in a repr, a log line, an exception message or a dashboard page by accident.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MASK", "REDACTED", "Secret", "redact"]

MASK = "**********"
REDACTED = "••••"


class Secret:
    """Wrap a secret value (str or dict); ``repr``/``str`` print a mask, ``reveal()`` the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str | dict[str, Any]) -> None:
        """Wrap ``value``; wrapping a Secret again just keeps its value."""
        if isinstance(value, Secret):
            value = value.reveal()
        self._value = value

    def reveal(self) -> Any:
        """Return the wrapped value."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        mine, theirs = self._value, other._value
        if isinstance(mine, str) and isinstance(theirs, str):
            # Constant time: equality on secrets should not leak a prefix through timing.
            return hmac.compare_digest(mine.encode("utf-8"), theirs.encode("utf-8"))
        return bool(mine == theirs)

    def __hash__(self) -> int:
        # Raises TypeError for dict values, like the dict itself would.
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))


def redact(
    mapping: Mapping[str, Any], secret_fields: Iterable[str] | None = None
) -> dict[str, Any]:
    """Return a copy of ``mapping`` with secret values replaced by "••••".

    Every value is replaced when ``secret_fields`` is None; otherwise only the named fields, plus
    any value that is a :class:`Secret`. Nested mappings are not walked: a secret field is
    hidden whole.
    """
    fields = None if secret_fields is None else set(secret_fields)
    result: dict[str, Any] = {}
    for name, value in mapping.items():
        hide = fields is None or name in fields or isinstance(value, Secret)
        result[name] = REDACTED if hide else value
    return result
