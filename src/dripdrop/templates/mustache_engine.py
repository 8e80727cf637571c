"""Mustache (pystache).

No HTML escaping: ``{{name}}`` and ``{{{name}}}`` render the same, as in the other engines.
Missing names render as empty strings, and so does ``None``. pystache's parser is lenient, so two
mistakes it would silently accept are reported here: a section never closed (``{{#a}}`` without
``{{/a}}``) and a tag never closed (``{{name``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pystache
from pystache.parsed import ParsedTemplate
from pystache.parser import ParsingError, _ChangeNode

from dripdrop.templates.base import CompiledTemplate, TemplateSyntaxError, line_of

_OPEN = "{{"


class _Renderer(pystache.Renderer):  # type: ignore[misc]
    def str_coerce(self, val: Any) -> str:
        return "" if val is None else str(val)


class _Scope(dict):  # type: ignore[type-arg]
    """pystache only treats real dicts as hashes; this one reads through to any Mapping."""

    def __init__(self, source: Mapping[str, Any]):
        super().__init__()
        self._source = source

    def __contains__(self, key: object) -> bool:
        return key in self._source

    def __getitem__(self, key: str) -> Any:
        return self._source[key]


class MustacheEngine:
    """Compiles Mustache source with pystache's parser."""

    name = "mustache"

    def __init__(self) -> None:
        self._renderer = _Renderer(escape=lambda text: text, missing_tags="ignore")

    def compile(self, source: str) -> CompiledTemplate:
        """Parse ``source``; raise TemplateSyntaxError for unbalanced sections or open tags."""
        try:
            parsed = pystache.parse(source, raise_on_mismatch=True)
        except ParsingError as exc:
            position = exc.info.position if exc.info is not None else None
            raise TemplateSyntaxError(str(exc), line_of(source, position)) from exc
        _check_open_tags(source, parsed)
        renderer = self._renderer

        def render(context: Mapping[str, Any]) -> str:
            return str(renderer.render(parsed, _Scope(context)))

        return CompiledTemplate(
            engine=self.name, source=source, render=render, names=frozenset(_names(parsed))
        )


def _nodes(parsed: ParsedTemplate) -> Iterable[Any]:
    for node in parsed._parse_tree:
        yield node
        inner = getattr(node, "parsed", None) or getattr(node, "parsed_section", None)
        if isinstance(inner, ParsedTemplate):
            yield from _nodes(inner)


def _names(parsed: ParsedTemplate) -> set[str]:
    # Names inside sections may resolve against the section's item; listing them anyway only
    # means a lookup that may not be needed.
    names = set()
    for node in _nodes(parsed):
        key = getattr(node, "key", None)
        if isinstance(key, str) and key != ".":
            names.add(key.split(".", 1)[0].strip())
    return names


def _check_open_tags(source: str, parsed: ParsedTemplate) -> None:
    nodes = list(_nodes(parsed))
    if any(isinstance(node, _ChangeNode) for node in nodes):
        return  # custom delimiters: a literal "{{" is legitimate text then
    for node in nodes:
        if isinstance(node, str) and _OPEN in node:
            offset = source.find(node)
            index = offset + node.index(_OPEN) if offset >= 0 else None
            raise TemplateSyntaxError("unclosed tag '{{'", line_of(source, index))
