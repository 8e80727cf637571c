"""Templates for step configs: Liquid (default), Mustache, Jinja2 (sandboxed) and MJML.

A leaf package: it never imports the engine, the worker or the client. See docs/templates.md.
"""

from __future__ import annotations

from dripdrop.templates.base import CompiledTemplate, TemplateEngine, TemplateSyntaxError
from dripdrop.templates.engines import DEFAULT_ENGINE, ENGINES, compile_template
from dripdrop.templates.limits import SliceExpired, TemplateLimitError
from dripdrop.templates.mjml import compile_mjml, is_mjml
from dripdrop.templates.render import (
    SKIP_KEYS,
    referenced_names,
    render_config,
    render_string,
    validate_config_templates,
)

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "SKIP_KEYS",
    "CompiledTemplate",
    "SliceExpired",
    "TemplateEngine",
    "TemplateLimitError",
    "TemplateSyntaxError",
    "compile_mjml",
    "compile_template",
    "is_mjml",
    "referenced_names",
    "render_config",
    "render_string",
    "validate_config_templates",
]
