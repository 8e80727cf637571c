"""Liquid (python-liquid 2.x), the default engine.

Lax about data: an undefined variable renders as an empty string (Liquid's default ``Undefined``).
Strict about syntax: bad tags and unknown filters are reported when the template is compiled, so
they surface when a step is created rather than when a message is sent. No autoescaping.

Bounded (see limits.py): python-liquid's own loop-iteration and local-namespace limits, plus a
budget charged when a loop starts and checked on every iteration; output (and each capture) stops
at the output limit as it is written; range literals longer than MAX_ITERATIONS and
``replace``/``join``/``times`` results that would blow up are refused before they are built.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from liquid import BoundTemplate, Environment, RenderContext, Undefined
from liquid.builtin.expressions.primitive import RangeLiteral
from liquid.exceptions import (
    ContextDepthError,
    LiquidError,
    LocalNamespaceLimitError,
    LoopIterationLimitError,
)
from liquid.expression import Expression
from liquid.utils import ReadOnlyChainMap

from dripdrop.templates import limits
from dripdrop.templates.base import CompiledTemplate, TemplateSyntaxError, line_of
from dripdrop.templates.limits import (
    MAX_INT_BITS,
    MAX_ITERATIONS,
    MAX_LOCALS_BYTES,
    MAX_OUTPUT,
    Budget,
    TemplateLimitError,
)


class _Environment(Environment):
    # python-liquid's own limits: nested loops (the product of their lengths) and the total
    # size of assigned and captured values.
    loop_iteration_limit = MAX_ITERATIONS
    local_namespace_limit = MAX_LOCALS_BYTES


class LiquidEngine:
    """Compiles Liquid source into a CompiledTemplate that renders against any Mapping."""

    name = "liquid"

    def __init__(self) -> None:
        self._env = _Environment(undefined=Undefined, autoescape=False)
        filters = self._env.filters
        filters["replace"] = _guarded(filters["replace"], _check_replace)
        filters["join"] = _guarded(filters["join"], _check_join)
        filters["times"] = _guarded(filters["times"], None)

    def compile(self, source: str) -> CompiledTemplate:
        """Parse ``source``; raise TemplateSyntaxError for bad syntax or an unknown filter."""
        try:
            template = self._env.from_string(source)
        except LiquidError as exc:
            token = getattr(exc, "token", None)
            line = line_of(source, token.start_index) if token is not None else None
            raise TemplateSyntaxError(str(exc.args[0]) if exc.args else str(exc), line) from exc
        self._check_filters(source, template)
        _bound_ranges(template)
        parts = _simple_parts(source)
        return CompiledTemplate(
            engine=self.name,
            source=source,
            render=_renderer(template, parts),
            names=frozenset(template.global_variables()),
            simple=parts is not None,
        )

    def _check_filters(self, source: str, template: BoundTemplate) -> None:
        # python-liquid only reports unknown filters while rendering; catch them now instead.
        for name in template.filter_names():
            if name not in self._env.filters:
                match = re.search(r"\|\s*" + re.escape(name) + r"\b", source)
                line = line_of(source, match.start()) if match else None
                raise TemplateSyntaxError(f"unknown filter {name!r}", line)


class _Globals(ReadOnlyChainMap):
    # RenderContext does `globals or {}`: a lazy mapping may report len() 0 and still answer.
    def __bool__(self) -> bool:
        return True


# Templates made only of text and plain ``{{ name }}`` / ``{{ a.b }}`` outputs (the common
# subject line) render by direct lookups — no filters, tags or whitespace control, and any value
# that is not plain text, number, boolean or nothing falls back to the full Liquid render.
_OUTPUT = re.compile(r"\{\{ *([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*) *\}\}")
_FALLBACK = object()


# (text before, variable name, attribute path) per output, then the text after the last one.
_Parts = tuple[tuple[tuple[str, str, tuple[str, ...]], ...], str]


def _simple_parts(source: str) -> _Parts | None:
    segments = []
    pos = 0
    for match in _OUTPUT.finditer(source):
        text = source[pos : match.start()]
        if "{{" in text or "{%" in text:
            return None
        name, *attrs = match.group(1).split(".")
        segments.append((text, name, tuple(attrs)))
        pos = match.end()
    tail = source[pos:]
    if "{{" in tail or "{%" in tail:
        return None
    return tuple(segments), tail


def _plain(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return _FALLBACK


def _fast(parts: _Parts, context: Mapping[str, Any]) -> Any:
    segments, tail = parts
    out = []
    append = out.append
    for text, name, attrs in segments:
        append(text)
        value: Any = context.get(name)
        for attr in attrs:
            if isinstance(value, dict):
                value = value.get(attr)
            elif value is None or isinstance(value, str | int | float):
                value = None  # Liquid: a missing attribute is undefined (renders empty)
            else:
                return _FALLBACK
        if type(value) is not str:
            value = _plain(value)
            if value is _FALLBACK:
                return _FALLBACK
        append(value)
    append(tail)
    return "".join(out)


def _renderer(template: BoundTemplate, parts: _Parts | None) -> Any:
    @limits.bounded
    def full(context: Mapping[str, Any]) -> str:
        # BoundTemplate.render(**ctx) would copy the mapping (calling every lazy value); a
        # RenderContext over the mapping itself only reads the names the template uses.
        scope = _Globals(context, template.matter, template.globals)
        ctx = _Context(template, globals=scope)
        buffer = _Output()
        try:
            template.render_with_context(ctx, buffer)
        except LoopIterationLimitError:
            raise _iterations_exceeded() from None
        except LocalNamespaceLimitError:
            raise TemplateLimitError(
                f"variable size limit exceeded: assigned values over {MAX_LOCALS_BYTES} bytes"
            ) from None
        except ContextDepthError:
            raise TemplateLimitError("nesting limit exceeded: context too deep") from None
        return buffer.getvalue()

    if parts is None:
        return full
    segments, tail = parts
    if len(segments) == 1 and not segments[0][2]:
        head, name, _attrs = segments[0]

        def render_one(context: Mapping[str, Any]) -> str:
            # The most common subject line, ``Hi {{ name }}!``: one lookup, one string built.
            value = context.get(name)
            if type(value) is not str:
                value = _plain(value)
                if value is _FALLBACK:
                    return full(context)
            return f"{head}{value}{tail}"

        return render_one

    def render(context: Mapping[str, Any]) -> str:
        # Plain outputs only: no loops or filters, so no budget to set up (the hot path).
        text = _fast(parts, context)
        if text is not _FALLBACK:
            return text  # type: ignore[no-any-return]
        return full(context)

    return render


def _budget() -> Budget:
    return limits.budget_or_refuse()  # always set: Liquid renders only under limits.bounded


def _iterations_exceeded() -> TemplateLimitError:
    return TemplateLimitError(
        f"loop iteration limit exceeded: more than {MAX_ITERATIONS} iterations"
    )


class _Output(io.StringIO):
    """The render's output (and each capture's): stops as soon as it is too long. (The time is
    checked per loop iteration, not per write: writes are the hottest path.)"""

    def __init__(self) -> None:
        super().__init__()
        self._room = MAX_OUTPUT

    def write(self, text: str) -> int:
        self._room -= len(text)
        if self._room < 0:
            raise limits.output_exceeded()
        return _write(self, text)


_write = io.StringIO.write


class _Context(RenderContext):
    """A RenderContext that charges loops to the budget (nested copies keep this class)."""

    def loop(self, namespace: Mapping[str, object], forloop: Any) -> Any:
        budget = _budget()
        # Counted when the loop starts (python-liquid knows its length), so a loop that could
        # never finish fails at once; the time is then checked on every iteration.
        budget.iterate(forloop.length)
        if hasattr(forloop, "it"):
            forloop.it = _timed(forloop.it, budget)
        return super().loop(namespace, forloop)

    def get_buffer(self, buf: Any = None) -> io.StringIO:
        return _Output()


def _timed(items: Iterator[Any], budget: Budget) -> Iterator[Any]:
    tick = budget.tick
    for item in items:
        tick()
        yield item


class _BoundedRange(RangeLiteral):
    """``(a..b)`` with at most MAX_ITERATIONS items: ``reversed``, ``join`` or ``sort`` would
    materialise it before any loop limit is looked at."""

    __slots__ = ()

    def _make_range(self, start: Any, stop: Any) -> range:
        items = super()._make_range(start, stop)
        if items.stop - items.start > MAX_ITERATIONS:
            raise TemplateLimitError(
                f"range limit exceeded: ({start}..{stop}) has more than {MAX_ITERATIONS} items"
            )
        return items


def _bound_ranges(template: BoundTemplate) -> None:
    # Every range literal the parser made becomes a _BoundedRange (same layout, so only the
    # class changes); python-liquid has no hook to choose the class while parsing.
    static = RenderContext(template)

    def expression(expr: Expression) -> None:
        if type(expr) is RangeLiteral:
            expr.__class__ = _BoundedRange
        for child in expr.children():
            expression(child)

    def node(item: Any) -> None:
        for expr in item.expressions():
            expression(expr)
        for child in item.children(static, include_partials=False):
            node(child)

    for item in template.nodes:
        node(item)


def _check_replace(value: Any, old: Any, new: Any = "", *_args: Any, **_kwargs: Any) -> None:
    limits.check_replace(str(value), str(old), str(new))


def _check_join(items: Any, separator: Any = " ", *_args: Any, **_kwargs: Any) -> None:
    limits.check_join(str(separator), items)


def _guarded(func: Callable[..., Any], check: Callable[..., None] | None) -> Callable[..., Any]:
    """``func`` (a filter) with ``check`` run on its arguments first and its result bounded."""

    @functools.wraps(func)  # keeps with_environment & co, which python-liquid reads
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.tick()
        if check is not None:
            check(*args, **kwargs)
        result = func(*args, **kwargs)
        if type(result) is int and result.bit_length() > MAX_INT_BITS:
            raise TemplateLimitError(
                f"number limit exceeded: a result of more than {MAX_INT_BITS} bits"
            )
        return budget.check(result)

    return guarded
