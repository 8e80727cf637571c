"""Liquid (python-liquid 2.x), the default engine.

Lax about data: an undefined variable renders as an empty string (Liquid's default ``Undefined``).
Strict about syntax: bad tags and unknown filters are reported when the template is compiled, so
they surface when a step is created rather than when a message is sent. No autoescaping.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

from liquid import BoundTemplate, Environment, RenderContext, Undefined
from liquid.exceptions import LiquidError
from liquid.utils import ReadOnlyChainMap

from dripdrop.templates.base import CompiledTemplate, TemplateSyntaxError, line_of


class LiquidEngine:
    """Compiles Liquid source into a CompiledTemplate that renders against any Mapping."""

    name = "liquid"

    def __init__(self) -> None:
        self._env = Environment(undefined=Undefined, autoescape=False)

    def compile(self, source: str) -> CompiledTemplate:
        """Parse ``source``; raise TemplateSyntaxError for bad syntax or an unknown filter."""
        try:
            template = self._env.from_string(source)
        except LiquidError as exc:
            token = getattr(exc, "token", None)
            line = line_of(source, token.start_index) if token is not None else None
            raise TemplateSyntaxError(str(exc.args[0]) if exc.args else str(exc), line) from exc
        self._check_filters(source, template)
        return CompiledTemplate(
            engine=self.name,
            source=source,
            render=_renderer(template, source),
            names=frozenset(template.global_variables()),
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


def _simple_parts(source: str) -> list[Any] | None:
    parts: list[Any] = []
    pos = 0
    for match in _OUTPUT.finditer(source):
        text = source[pos : match.start()]
        if "{{" in text or "{%" in text:
            return None
        parts.append(text)
        parts.append(tuple(match.group(1).split(".")))
        pos = match.end()
    tail = source[pos:]
    if "{{" in tail or "{%" in tail:
        return None
    parts.append(tail)
    return parts


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


def _fast(parts: list[Any], context: Mapping[str, Any]) -> Any:
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value: Any = context.get(part[0]) if part[0] in context else None
        for attr in part[1:]:
            if isinstance(value, dict):
                value = value.get(attr)
            elif value is None or isinstance(value, str | int | float):
                value = None  # Liquid: a missing attribute is undefined (renders empty)
            else:
                return _FALLBACK
        text = _plain(value)
        if text is _FALLBACK:
            return _FALLBACK
        out.append(text)
    return "".join(out)


def _renderer(template: BoundTemplate, source: str) -> Any:
    parts = _simple_parts(source)

    def render(context: Mapping[str, Any]) -> str:
        if parts is not None:
            text = _fast(parts, context)
            if text is not _FALLBACK:
                return text  # type: ignore[no-any-return]
        # BoundTemplate.render(**ctx) would copy the mapping (calling every lazy value); a
        # RenderContext over the mapping itself only reads the names the template uses.
        scope = _Globals(context, template.matter, template.globals)
        ctx = RenderContext(template, globals=scope)
        buffer = io.StringIO()
        template.render_with_context(ctx, buffer)
        return buffer.getvalue()

    return render
