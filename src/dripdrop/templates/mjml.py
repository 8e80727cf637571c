"""MJML → HTML with ``mrml`` (the Rust port), chosen in docs/templates.md (bench/mjml_choice.py).

The text engine renders first, then the result is compiled, so values from the context land in
the MJML source. Only a document that starts with ``<mjml`` is compiled. The source is size- and
depth-checked first (limits.check_mjml): deeply nested markup crashes mrml's native parser with
SIGSEGV, which would take the whole worker down.
"""

from __future__ import annotations

from dripdrop.errors import require_extra
from dripdrop.templates.limits import MAX_OUTPUT, TemplateLimitError, check_mjml


class MjmlError(Exception):
    """The MJML document could not be compiled."""


def is_mjml(text: str) -> bool:
    """True when ``text`` (leading whitespace ignored) is an MJML document."""
    return text.lstrip().startswith("<mjml")


def compile_mjml(source: str) -> str:
    """Compile an MJML document to an HTML document; raise MjmlError when it is malformed, too
    large or too deeply nested, or when the HTML would be longer than MAX_OUTPUT."""
    mrml = require_extra("mrml", "mjml")
    try:
        check_mjml(source)
    except TemplateLimitError as exc:
        raise MjmlError(f"mjml error: {exc}") from None
    try:
        html = str(mrml.to_html(source).content)
    # mrml reports parse errors as OSError; anything it raises means "this MJML is bad".
    except Exception as exc:
        raise MjmlError(f"mjml error: {exc}") from exc
    if len(html) > MAX_OUTPUT:  # MJML expands 10 to 30 times: a modest source can exceed it
        raise MjmlError(
            f"mjml error: output limit exceeded: the HTML has more than {MAX_OUTPUT} characters"
        )
    return html
