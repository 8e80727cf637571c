"""Values worked out once per adapter.

An adapter's credentials and config dicts (and what is parsed from them) live as long as the
worker's definitions cache and are read for every delivery: parsing them, their secret forms,
a provider's derived settings are each computed once per dict.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class PerObject:
    """A bounded memo keyed by the identity of some objects (plus hashable ``extra`` values).
    An entry holds its objects, so their ids cannot be reused by others while it exists; a
    full memo starts again empty. ``make`` raising caches nothing."""

    def __init__(self, maxsize: int = 512) -> None:
        self._maxsize = maxsize
        self._entries: dict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] = {}

    def get(self, objects: tuple[Any, ...], make: Callable[[], T], *extra: Hashable) -> T:
        key = (*map(id, objects), *extra)
        hit = self._entries.get(key)
        if hit is not None:
            # The entry holds its objects alive, so no other object can have their ids: a key
            # found is for these very objects.
            return hit[1]  # type: ignore[no-any-return]
        value = make()
        if len(self._entries) >= self._maxsize:
            self._entries.clear()
        self._entries[key] = (objects, value)
        return value
