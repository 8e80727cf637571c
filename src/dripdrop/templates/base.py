"""What every template engine shares: the compiled template record, the syntax error, the
protocol an engine implements and the memoising view over a (possibly lazy) render context."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

_MISSING = object()  # not looked up yet
_ABSENT = object()  # looked up: the source has no such key


class TemplateSyntaxError(Exception):
    """A template that does not compile. Turned into ValidationError/PermanentError by render.py."""

    def __init__(self, message: str, line: int | None = None):
        self.message = message
        self.line = line
        where = f" (line {line})" if line is not None else ""
        super().__init__(f"template syntax error: {message}{where}")


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """A template compiled once and rendered many times.

    ``render`` takes a Mapping (read lazily, key by key) and returns text; ``names`` are the
    top-level variables the template reads (a superset is fine: it only costs extra lookups).
    ``simple`` templates only print values (no loops, filters or tags): their cost is the length
    of what they print, so no time or iteration budget is set up for them (the hot path).
    """

    engine: str
    source: str
    render: Callable[[Mapping[str, Any]], str]
    names: frozenset[str]
    simple: bool = False


class TemplateEngine(Protocol):
    """A text template language. ``compile`` raises TemplateSyntaxError on bad syntax."""

    name: str

    def compile(self, source: str) -> CompiledTemplate:
        """Compile ``source``; raise TemplateSyntaxError when it is not a valid template."""
        ...


def line_of(source: str, index: int | None) -> int | None:
    """The 1-based line of a character offset in ``source`` (None when unknown)."""
    if index is None or index < 0:
        return None
    return source.count("\n", 0, index) + 1


class MemoContext(Mapping[str, Any]):
    """A read-through cache over a context Mapping.

    The caller's context may compute values on demand (hooks); rendering a step reads the same
    names from several fields, so each value is computed at most once per render call. Missing
    names are remembered too, so a hook that does not exist is not asked twice.
    """

    __slots__ = ("_cache", "_source")

    def __init__(self, source: Mapping[str, Any]):
        self._source = source
        self._cache: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        value = self._cache.get(key, _MISSING)
        if value is _MISSING:
            try:
                value = self._source[key]
            except KeyError:
                self._cache[key] = _ABSENT
                raise
            self._cache[key] = value
        if value is _ABSENT:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._source)

    def __len__(self) -> int:
        return len(self._source)


def as_context(context: Mapping[str, Any]) -> Mapping[str, Any]:
    """Plain dicts are read directly; any other Mapping is wrapped in a MemoContext."""
    if type(context) is dict or isinstance(context, MemoContext):
        return context
    return MemoContext(context)
