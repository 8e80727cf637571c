"""The one entry point for templates in a step's config: validate, list names, render.

A config is walked recursively: every string in it (at any depth of dicts, lists and tuples) is a
template, except the values of the top-level keys in SKIP_KEYS, which are settings. The top-level
``body`` of an email is compiled from MJML to HTML after the text engine ran, when the rendered
text starts with ``<mjml``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from dripdrop.errors import DripDropError, PermanentError, ValidationError
from dripdrop.templates.base import CompiledTemplate, TemplateSyntaxError, as_context
from dripdrop.templates.engines import ENGINES, compile_template, is_engine, text_engine
from dripdrop.templates.mjml import MjmlError, compile_mjml, is_mjml

# Step settings that are never templates (their values are copied untouched).
SKIP_KEYS = frozenset(
    {
        "template_engine",
        "on_failure",
        "max_retries",
        "channel_adapter_rotation",
        "channel_adapter_id",
        "parse_mode",
        "method",
        "timeout_ms",
    }
)
BODY_KEY = "body"


def _unknown_engine(engine: object) -> str:
    return f"unknown template engine {engine!r}; choose one of {', '.join(ENGINES)}"


def _strings(config: Any, path: str, top: bool = True) -> Iterator[tuple[str, str, bool]]:
    """Yield (path, source, is_top_level_body) for every template string in ``config``."""
    if isinstance(config, str):
        yield path, config, False
    elif isinstance(config, Mapping):
        for key, value in config.items():
            if top and key in SKIP_KEYS:
                continue
            sub = f"{path}.{key}"
            if top and key == BODY_KEY and isinstance(value, str):
                yield sub, value, True
            else:
                yield from _strings(value, sub, top=False)
    elif isinstance(config, list | tuple):
        for index, value in enumerate(config):
            yield from _strings(value, f"{path}.{index}", top=False)


def _compile(engine: str, source: str) -> CompiledTemplate | None:
    # Every engine's tags start with "{": plain text needs no parsing and no cache slot.
    if "{" not in source:
        return None
    return compile_template(engine, source)


def validate_config_templates(
    config: Any, engine: str = "liquid", *, field_prefix: str = "config"
) -> None:
    """Compile every template string of a step config; raise one ValidationError for all errors.

    Error keys are dotted paths (``config.subject``, ``config.payload.items.0``); an unknown
    engine is reported on ``template_engine``. An email body that is MJML is also compiled to HTML
    (after rendering its text with an empty context) so malformed MJML is caught here too.
    """
    if not is_engine(engine):
        raise ValidationError({"template_engine": [_unknown_engine(engine)]})
    text = text_engine(engine)
    errors: dict[str, list[str]] = {}
    for path, source, is_body in _strings(config, field_prefix):
        try:
            compiled = _compile(text, source)
        except TemplateSyntaxError as exc:
            errors.setdefault(path, []).append(str(exc))
            continue
        if is_body and "<mjml" in source:
            problem = _mjml_problem(compiled, source)
            if problem:
                errors.setdefault(path, []).append(problem)
    if errors:
        raise ValidationError(errors)


def _mjml_problem(compiled: CompiledTemplate | None, source: str) -> str | None:
    try:
        sample = compiled.render({}) if compiled is not None else source
    except Exception:
        return None  # needs real data to render: the MJML is checked when it is sent
    if not is_mjml(sample):
        return None
    try:
        compile_mjml(sample)
    except MjmlError as exc:
        return str(exc)
    return None


def referenced_names(config: Any, engine: str = "liquid") -> set[str]:
    """The top-level variable names the templates in ``config`` read.

    The caller computes only these (hooks are costly). Invalid templates contribute no names:
    rendering them raises the error with its path.
    """
    if not is_engine(engine):
        raise ValidationError({"template_engine": [_unknown_engine(engine)]})
    text = text_engine(engine)
    names: set[str] = set()
    for _path, source, _is_body in _strings(config, "config"):
        try:
            compiled = _compile(text, source)
        except TemplateSyntaxError:
            continue
        if compiled is not None:
            names |= compiled.names
    return names


def _render_text(engine: str, source: str, path: str, context: Mapping[str, Any]) -> str:
    try:
        compiled = _compile(engine, source)
    except TemplateSyntaxError as exc:
        raise PermanentError(f"{path}: {exc}") from exc
    if compiled is None:
        return source
    return _run(compiled, context, path)


def _run(compiled: CompiledTemplate, context: Mapping[str, Any], path: str) -> str:
    try:
        return compiled.render(context)
    except DripDropError:
        raise  # a hook's own error (e.g. TransientError) keeps its meaning
    except Exception as exc:
        raise PermanentError(f"template error in {path}: {exc}") from exc


def _mjml_body(text: str, path: str) -> str:
    """An email body compiled from MJML when it is an MJML document, else as it is."""
    if not is_mjml(text):
        return text
    try:
        return compile_mjml(text)
    except MjmlError as exc:
        raise PermanentError(f"{path}: {exc}") from exc


def render_string(source: str, context: Mapping[str, Any], engine: str = "liquid") -> str:
    """Render one template string (HTTP hook URLs and bodies). No MJML step.

    Raises PermanentError for an unknown engine, bad syntax or a runtime template error.
    """
    if not is_engine(engine):
        raise PermanentError(_unknown_engine(engine))
    return _render_text(text_engine(engine), source, "template", as_context(context))


def render_config(
    config: Any, context: Mapping[str, Any], engine: str = "liquid", *, channel: str | None = None
) -> Any:
    """Return a deep copy of ``config`` with every template string rendered.

    Non-string leaves and the SKIP_KEYS settings are copied as they are. The top-level ``body``
    is compiled from MJML when it renders to an MJML document and ``channel`` is "email" or None.
    Lazy contexts are read once per name for the whole config. Raises PermanentError naming the
    field (``config.subject``) when a template cannot be rendered.
    """
    if not is_engine(engine):
        raise PermanentError(_unknown_engine(engine))
    walker = _Renderer(text_engine(engine), as_context(context), channel in (None, "email"))
    return walker.render(config, "config", top=True)


class FlatConfig:
    """A config whose values are all strings or scalars, compiled once: rendering it is one call
    per template field (the engine's hot path renders the same step thousands of times)."""

    __slots__ = ("fields", "mjml_body")

    def __init__(self, fields: tuple[tuple[str, Any, Any, str], ...], mjml_body: bool) -> None:
        self.fields = fields  # (key, compiled template or None, value, path for errors)
        self.mjml_body = mjml_body

    def render(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The rendered fields, with the same results and errors as :func:`render_config`."""
        ctx = as_context(context)
        out: dict[str, Any] = {}
        for key, compiled, value, path in self.fields:
            out[key] = value if compiled is None else _run(compiled, ctx, path)
        body = out.get(BODY_KEY)
        if self.mjml_body and isinstance(body, str):
            out[BODY_KEY] = _mjml_body(body, f"config.{BODY_KEY}")
        return out


_SCALARS = (str, int, float, bool, type(None))


def compile_flat(
    config: Mapping[str, Any], engine: str = "liquid", *, channel: str | None = None
) -> FlatConfig | None:
    """A :class:`FlatConfig` for ``config``, or None when it nests dicts or lists, names an
    unknown engine or holds a template that does not compile (:func:`render_config` then
    renders it, and reports any error with its path)."""
    if not is_engine(engine):
        return None
    text = text_engine(engine)
    fields = []
    for key, value in config.items():
        if not isinstance(value, _SCALARS):
            return None
        compiled = None
        if isinstance(value, str) and key not in SKIP_KEYS:
            try:
                compiled = _compile(text, value)
            except TemplateSyntaxError:
                return None
        fields.append((key, compiled, value, f"config.{key}"))
    return FlatConfig(tuple(fields), channel in (None, "email"))


class _Renderer:
    __slots__ = ("context", "engine", "mjml_body")

    def __init__(self, engine: str, context: Mapping[str, Any], mjml_body: bool):
        self.engine = engine
        self.context = context
        self.mjml_body = mjml_body

    def render(self, value: Any, path: str, top: bool = False) -> Any:
        if isinstance(value, str):
            return _render_text(self.engine, value, path, self.context)
        if isinstance(value, Mapping):
            out = {}
            for key, item in value.items():
                if top and key in SKIP_KEYS:
                    out[key] = copy.deepcopy(item)
                else:
                    out[key] = self.render(item, f"{path}.{key}")
            if top and self.mjml_body and isinstance(out.get(BODY_KEY), str):
                out[BODY_KEY] = _mjml_body(out[BODY_KEY], f"{path}.{BODY_KEY}")
            return out
        if isinstance(value, list | tuple):
            items = [self.render(item, f"{path}.{i}") for i, item in enumerate(value)]
            return items if isinstance(value, list) else tuple(items)
        return copy.deepcopy(value)
