"""The engine names a step may choose and the one compile cache in front of them."""

from __future__ import annotations

from functools import lru_cache

from dripdrop.templates.base import CompiledTemplate, TemplateEngine
from dripdrop.templates.jinja_engine import JinjaEngine
from dripdrop.templates.liquid_engine import LiquidEngine
from dripdrop.templates.mustache_engine import MustacheEngine

ENGINES: tuple[str, ...] = ("liquid", "mustache", "jinja2", "mjml")
DEFAULT_ENGINE = "liquid"
CACHE_SIZE = 4096

_liquid = LiquidEngine()
# "mjml" is Liquid for the text, then MJML → HTML for an email body (see render.py).
_TEXT_ENGINES: dict[str, TemplateEngine] = {
    "liquid": _liquid,
    "mjml": _liquid,
    "mustache": MustacheEngine(),
    "jinja2": JinjaEngine(),
}


def is_engine(name: object) -> bool:
    """True when ``name`` is one of ENGINES."""
    return isinstance(name, str) and name in _TEXT_ENGINES


def text_engine(name: str) -> str:
    """The engine that renders the text of templates for ``name`` ("mjml" → "liquid")."""
    return _TEXT_ENGINES[name].name


@lru_cache(maxsize=CACHE_SIZE)
def compile_template(engine: str, source: str) -> CompiledTemplate:
    """Compile ``source`` with ``engine``, cached by (engine, source) in a bounded LRU.

    Workers render the same step templates over and over; only the first use parses. Raises
    KeyError for an unknown engine and TemplateSyntaxError for bad syntax (errors are not cached).
    """
    return _TEXT_ENGINES[engine].compile(source)
