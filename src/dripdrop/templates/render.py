"""The one entry point for templates in a step's config: validate, list names, render.

A config is walked recursively: every string in it (at any depth of dicts, lists and tuples) is a
template, except the values of the top-level keys in SKIP_KEYS, which are settings. The top-level
``body`` of an email is compiled from MJML to HTML after the text engine ran, when the rendered
text starts with ``<mjml``.

Every render runs under the limits of limits.py: one Budget per call (a whole config), the output
limit per field. A template that breaks one fails with PermanentError (render) or ValidationError
(create) naming the field and the limit.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from dripdrop.errors import DripDropError, PermanentError, ValidationError
from dripdrop.templates import limits
from dripdrop.templates.base import CompiledTemplate, TemplateSyntaxError, as_context
from dripdrop.templates.engines import ENGINES, compile_template, is_engine, text_engine
from dripdrop.templates.limits import (
    MAX_OUTPUT,
    TIME_LIMIT,
    Budget,
    SliceExpired,
    TemplateLimitError,
)
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
    engine is reported on ``template_engine``. Each template is also rendered once with an empty
    context, under the same limits as when sending (at most TIME_LIMIT for the whole config), so a
    template that breaks a limit whatever the data (``{{ 'a' * 10**9 }}``) is reported here; other
    errors of that sample render are ignored (real data may avoid them). An email body that is MJML
    is compiled to HTML from that sample, so malformed MJML is caught here too.
    """
    if not is_engine(engine):
        raise ValidationError({"template_engine": [_unknown_engine(engine)]})
    text = text_engine(engine)
    errors: dict[str, list[str]] = {}
    token = limits.activate(Budget())
    try:
        for path, source, is_body in _strings(config, field_prefix):
            try:
                compiled = _compile(text, source)
            except TemplateSyntaxError as exc:
                errors.setdefault(path, []).append(str(exc))
                continue
            sample, problem = _sample(compiled, source)
            if problem is None and is_body and sample is not None and is_mjml(sample):
                problem = _mjml_problem(sample)
            if problem:
                errors.setdefault(path, []).append(problem)
    finally:
        limits.deactivate(token)
    if errors:
        raise ValidationError(errors)


def _sample(compiled: CompiledTemplate | None, source: str) -> tuple[str | None, str | None]:
    """(text, limit broken) of rendering ``compiled`` with an empty context."""
    if compiled is None:
        return source, None
    try:
        text = compiled.render({})
    except TemplateLimitError as exc:
        return None, str(exc)
    except Exception:
        return None, None  # needs real data to render: checked when it is sent
    if len(text) > MAX_OUTPUT:
        return None, str(limits.output_exceeded())
    return text, None


def _mjml_problem(sample: str) -> str | None:
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


class _Limits:
    """The budget of one render call, activated when the first template that needs one (not
    ``simple``) renders: plain subject lines never pay for it."""

    __slots__ = ("slice_after", "started", "time_limit", "token")

    def __init__(
        self, time_limit: float, slice_after: float | None = None, started: float | None = None
    ) -> None:
        self.time_limit = time_limit
        self.slice_after = slice_after
        self.started = started
        self.token: Any = None

    def run(self, compiled: CompiledTemplate, context: Mapping[str, Any], path: str) -> str:
        if self.token is None and not compiled.simple:
            budget = Budget(self.time_limit, self.slice_after, self.started)
            self.token = limits.activate(budget)
        return _run(compiled, context, path)

    def close(self) -> None:
        if self.token is not None:
            limits.deactivate(self.token)
            self.token = None


def _render_text(
    engine: str, source: str, path: str, context: Mapping[str, Any], budget: _Limits
) -> str:
    try:
        compiled = _compile(engine, source)
    except TemplateSyntaxError as exc:
        raise PermanentError(f"{path}: {exc}") from exc
    if compiled is None:
        return source
    return budget.run(compiled, context, path)


def _run(compiled: CompiledTemplate, context: Mapping[str, Any], path: str) -> str:
    try:
        text = compiled.render(context)
    except SliceExpired:
        raise  # not an error: the caller continues off its event loop
    except TemplateLimitError as exc:
        raise PermanentError(f"template error in {path}: {exc}") from None
    except DripDropError:
        raise  # a hook's own error (e.g. TransientError) keeps its meaning
    except Exception as exc:
        raise PermanentError(f"template error in {path}: {exc}") from exc
    if len(text) > MAX_OUTPUT:  # plain outputs too: a 100 MB value from enrollment data
        raise PermanentError(f"template error in {path}: {limits.output_exceeded()}")
    return text


def _mjml_body(text: str, path: str) -> str:
    """An email body compiled from MJML when it is an MJML document, else as it is."""
    if not is_mjml(text):
        return text
    try:
        return compile_mjml(text)
    except MjmlError as exc:
        raise PermanentError(f"{path}: {exc}") from exc


def render_string(
    source: str,
    context: Mapping[str, Any],
    engine: str = "liquid",
    *,
    time_limit: float = TIME_LIMIT,
) -> str:
    """Render one template string (HTTP hook URLs and bodies). No MJML step.

    Raises PermanentError for an unknown engine, bad syntax, a runtime template error or a broken
    limit (at most ``time_limit`` seconds).
    """
    if not is_engine(engine):
        raise PermanentError(_unknown_engine(engine))
    try:
        compiled = _compile(text_engine(engine), source)
    except TemplateSyntaxError as exc:
        raise PermanentError(f"template: {exc}") from exc
    if compiled is None:
        return source
    if compiled.simple:  # plain outputs: no budget to set up
        return _run(compiled, as_context(context), "template")
    token = limits.activate(Budget(time_limit))
    try:
        return _run(compiled, as_context(context), "template")
    finally:
        limits.deactivate(token)


def render_config(
    config: Any,
    context: Mapping[str, Any],
    engine: str = "liquid",
    *,
    channel: str | None = None,
    time_limit: float = TIME_LIMIT,
    slice_after: float | None = None,
    started: float | None = None,
) -> Any:
    """Return a deep copy of ``config`` with every template string rendered.

    Non-string leaves and the SKIP_KEYS settings are copied as they are. The top-level ``body``
    is compiled from MJML when it renders to an MJML document and ``channel`` is "email" or None.
    Lazy contexts are read once per name for the whole config. Raises PermanentError naming the
    field (``config.subject``) when a template cannot be rendered or breaks a limit; the whole
    config gets ``time_limit`` seconds. With ``slice_after``, a render still running after that
    many seconds raises SliceExpired (see limits.py) so the caller can render again elsewhere,
    passing ``started=exc.started`` so the time limit counts from the first attempt.
    """
    if not is_engine(engine):
        raise PermanentError(_unknown_engine(engine))
    budget = _Limits(time_limit, slice_after, started)
    walker = _Renderer(text_engine(engine), as_context(context), channel in (None, "email"), budget)
    try:
        return walker.render(config, "config", top=True)
    finally:
        budget.close()


class FlatConfig:
    """A config whose values are all strings or scalars, compiled once: rendering it is one call
    per template field (the engine's hot path renders the same step thousands of times)."""

    __slots__ = ("fields", "mjml_body", "simple")

    def __init__(self, fields: tuple[tuple[str, Any, Any, str], ...], mjml_body: bool) -> None:
        self.fields = fields  # (key, compiled template or None, value, path for errors)
        self.mjml_body = mjml_body
        # Only plain outputs: nothing a time budget could interrupt, so none is set up.
        self.simple = all(compiled is None or compiled.simple for _k, compiled, _v, _p in fields)

    def render(
        self,
        context: Mapping[str, Any],
        *,
        time_limit: float = TIME_LIMIT,
        slice_after: float | None = None,
        started: float | None = None,
    ) -> dict[str, Any]:
        """The rendered fields, with the same results, errors and limits as
        :func:`render_config` (``time_limit``, ``slice_after`` and ``started`` too)."""
        ctx = as_context(context)
        # Plain outputs only: no budget to set up (the hot path).
        budget = None if self.simple else Budget(time_limit, slice_after, started)
        token = None if budget is None else limits.activate(budget)
        try:
            out: dict[str, Any] = {}
            for key, compiled, value, path in self.fields:
                out[key] = value if compiled is None else _run(compiled, ctx, path)
        finally:
            if token is not None:
                limits.deactivate(token)
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
    __slots__ = ("budget", "context", "engine", "mjml_body")

    def __init__(
        self, engine: str, context: Mapping[str, Any], mjml_body: bool, budget: _Limits
    ) -> None:
        self.engine = engine
        self.context = context
        self.mjml_body = mjml_body
        self.budget = budget

    def render(self, value: Any, path: str, top: bool = False) -> Any:
        if isinstance(value, str):
            return _render_text(self.engine, value, path, self.context, self.budget)
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
