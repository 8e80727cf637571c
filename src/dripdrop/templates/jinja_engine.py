"""Jinja2 in an immutable sandbox (the counterpart of Elixir's EEx in the original design).

The sandbox refuses unsafe attributes (``__class__``, ``__mro__``…: they render as undefined, or
raise SecurityError when called) and methods that mutate lists, dicts and sets. Undefined names
render as empty strings, chained lookups on them too (``ChainableUndefined``), and ``None`` renders
as an empty string like in Liquid. Autoescape is off for every field, the HTML email body included:
use ``|e`` where a value must be escaped.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from typing import Any

from jinja2 import ChainableUndefined, Template, meta
from jinja2 import TemplateSyntaxError as JinjaSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from dripdrop.templates.base import CompiledTemplate, TemplateSyntaxError


def _finalize(value: Any) -> Any:
    return "" if value is None else value


class JinjaEngine:
    """Compiles Jinja2 source with an ImmutableSandboxedEnvironment."""

    name = "jinja2"

    def __init__(self) -> None:
        self._env = ImmutableSandboxedEnvironment(
            undefined=ChainableUndefined, autoescape=False, finalize=_finalize
        )

    def compile(self, source: str) -> CompiledTemplate:
        """Compile ``source``; raise TemplateSyntaxError (with its line) when it is invalid."""
        try:
            ast = self._env.parse(source)
            template = self._env.from_string(ast)
        except JinjaSyntaxError as exc:
            raise TemplateSyntaxError(exc.message or str(exc), exc.lineno) from exc
        names = meta.find_undeclared_variables(ast) - set(self._env.globals)
        return CompiledTemplate(
            engine=self.name, source=source, render=_renderer(template), names=frozenset(names)
        )


def _renderer(template: Template) -> Any:
    environment = template.environment

    def render(context: Mapping[str, Any]) -> str:
        # Template.render() copies its arguments into a dict (computing every lazy value);
        # a shared context over a ChainMap reads only what the template asks for.
        ctx = template.new_context(ChainMap(context, template.globals), shared=True)  # type: ignore[arg-type]
        return environment.concat(template.root_render_func(ctx))  # type: ignore[attr-defined]

    return render
