"""Mustache (pystache).

No HTML escaping: ``{{name}}`` and ``{{{name}}}`` render the same, as in the other engines.
Missing names render as empty strings, and so does ``None``. pystache's parser is lenient, so two
mistakes it would silently accept are reported here: a section never closed (``{{#a}}`` without
``{{/a}}``) and a tag never closed (``{{name``). Partials (``{{> name}}``) render as nothing: they
are never loaded from files.

Bounded (see limits.py): every rendering of a section's body counts one loop iteration and checks
the time, and output is counted as it is produced (each body's literal text, each value), so
nested sections over long lists stop at the limits instead of building the whole text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pystache
from pystache.parsed import ParsedTemplate
from pystache.parser import (
    ParsingError,
    _ChangeNode,
    _InvertedNode,
    _PartialNode,
    _SectionNode,
)

from dripdrop.templates import limits
from dripdrop.templates.base import CompiledTemplate, TemplateSyntaxError, line_of
from dripdrop.templates.limits import Budget

_OPEN = "{{"


def _budget() -> Budget:
    return limits.budget_or_refuse()  # always set: sections render only under limits.bounded


class _Renderer(pystache.Renderer):  # type: ignore[misc]
    def str_coerce(self, val: Any) -> str:
        return "" if val is None else str(val)


class _CountingRenderer(_Renderer):
    # Every value printed passes through one of these two: count it as output.
    def _escape_to_unicode(self, s: Any) -> str:
        text = str(super()._escape_to_unicode(s))
        _budget().write(len(text))
        return text

    def _to_unicode_hard(self, s: Any) -> str:
        text = str(super()._to_unicode_hard(s))
        _budget().write(len(text))
        return text


class _Counted(ParsedTemplate):  # type: ignore[misc]
    """A template or section body that charges each rendering to the budget: one iteration,
    and its literal text as output, before pystache renders (and joins) it."""

    _static = 0  # characters of literal text, set by _count

    def render(self, engine: Any, context: Any) -> str:
        budget = _budget()
        budget.iterate()
        budget.write(self._static)
        return str(super().render(engine, context))


def _count(parsed: ParsedTemplate) -> ParsedTemplate:
    """Turn ``parsed`` and every section body in it into _Counted (same layout: class swap)."""
    parsed.__class__ = _Counted
    parsed._static = sum(len(node) for node in parsed._parse_tree if type(node) is str)
    for node in parsed._parse_tree:
        inner = getattr(node, "parsed", None) or getattr(node, "parsed_section", None)
        if isinstance(inner, ParsedTemplate):
            _count(inner)
    return parsed


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
        # partials={}: a ``{{> name}}`` would otherwise read name.mustache from the working
        # directory (and a partial that includes itself recurses).
        options: dict[str, Any] = {"escape": _same, "missing_tags": "ignore", "partials": {}}
        self._renderer = _Renderer(**options)
        self._counting = _CountingRenderer(**options)

    def compile(self, source: str) -> CompiledTemplate:
        """Parse ``source``; raise TemplateSyntaxError for unbalanced sections or open tags."""
        try:
            parsed = pystache.parse(source, raise_on_mismatch=True)
        except ParsingError as exc:
            position = exc.info.position if exc.info is not None else None
            raise TemplateSyntaxError(str(exc), line_of(source, position)) from exc
        _check_open_tags(source, parsed)
        names = frozenset(_names(parsed))
        # Without sections or partials a template prints each value once: no budget needed.
        simple = not any(isinstance(node, _COMPOUND) for node in parsed._parse_tree)
        if simple:
            plain = self._renderer

            def render(context: Mapping[str, Any]) -> str:
                return str(plain.render(parsed, _Scope(context)))

        else:
            _count(parsed)
            counting = self._counting

            @limits.bounded
            def render(context: Mapping[str, Any]) -> str:
                _budget().output = 0  # the output limit is per field
                return str(counting.render(parsed, _Scope(context)))

        return CompiledTemplate(
            engine=self.name, source=source, render=render, names=names, simple=simple
        )


def _same(text: str) -> str:
    return text


_COMPOUND = (_SectionNode, _InvertedNode, _PartialNode)


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
