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
            render=_renderer(template),
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


def _renderer(template: BoundTemplate) -> Any:
    def render(context: Mapping[str, Any]) -> str:
        # BoundTemplate.render(**ctx) would copy the mapping (calling every lazy value); a
        # RenderContext over the mapping itself only reads the names the template uses.
        scope = _Globals(context, template.matter, template.globals)
        ctx = RenderContext(template, globals=scope)
        buffer = io.StringIO()
        template.render_with_context(ctx, buffer)
        return buffer.getvalue()

    return render
