"""MJML → HTML with ``mrml`` (the Rust port), chosen in docs/templates.md (bench/mjml_choice.py).

The text engine renders first, then the result is compiled, so values from the context land in
the MJML source. Only a document that starts with ``<mjml`` is compiled.
"""

from __future__ import annotations

from dripdrop.errors import require_extra


class MjmlError(Exception):
    """The MJML document could not be compiled."""


def is_mjml(text: str) -> bool:
    """True when ``text`` (leading whitespace ignored) is an MJML document."""
    return text.lstrip().startswith("<mjml")


def compile_mjml(source: str) -> str:
    """Compile an MJML document to an HTML document; raise MjmlError when it is malformed."""
    mrml = require_extra("mrml", "mjml")
    try:
        return str(mrml.to_html(source).content)
    # mrml reports parse errors as OSError; anything it raises means "this MJML is bad".
    except Exception as exc:
        raise MjmlError(f"mjml error: {exc}") from exc
