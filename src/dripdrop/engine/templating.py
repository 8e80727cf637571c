"""Producing a step's rendered fields from its template type (inline, module, external)."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import weakref
from typing import Any

from dripdrop.engine.context import HookValues
from dripdrop.engine.defs import StepDef
from dripdrop.errors import PermanentError
from dripdrop.templates import SliceExpired, referenced_names, render_config

# Engine settings that are not message fields (kept out of what providers receive).
ENGINE_KEYS = frozenset(
    {
        "template_engine",
        "on_failure",
        "max_retries",
        "channel_adapter_rotation",
        "channel_adapter_id",
        # flow control (engine/flow.py)
        "repeat",
        "digest",
        "split",
        # deliverability (engine/quiet_hours.py, engine/frequency_caps.py)
        "quiet_hours",
        "frequency_cap",
    }
)

# How long a render may hold the event loop. Renders are bounded (1 s, see
# dripdrop.templates.limits); one still running after this slice is abandoned and done again on a
# thread, within the same time limit, so a heavy template never stalls the worker's other jobs.
# Rendering is pure (hook values are fetched before), so starting over gives the same result.
INLINE_SLICE = 0.02

# The channel field an external template's plain-text answer fills.
MAIN_FIELD = {
    "email": "body",
    "sms": "body",
    "webhook": "body",
    "slack": "text",
    "telegram": "text",
    "discord": "text",
    "msteams": "text",
    "apprise": "body",
    "pubsub": "payload",
}


# One external fetch per URL at a time per worker run: jobs running concurrently wait for the first
# fetch and then read the services' cache instead of all fetching the same template.
_fetch_locks: weakref.WeakKeyDictionary[Any, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


async def _fetch_external(services: Any, url: str) -> Any:
    locks = _fetch_locks.setdefault(services, {})
    async with locks.setdefault(url, asyncio.Lock()):
        return await services.fetch_external_template(url)


async def _module_fields(step: StepDef, hooks: HookValues) -> dict[str, Any]:
    try:
        module = importlib.import_module(step.template_module or "")
        fn = getattr(module, step.template_function or "")
    except (ImportError, AttributeError) as exc:
        raise PermanentError(
            f"template {step.template_module}.{step.template_function} cannot be loaded: {exc}"
        ) from exc
    services, timeout = hooks.services, hooks.services.hook_timeout
    try:
        if inspect.iscoroutinefunction(fn):
            result = await asyncio.wait_for(fn(hooks.enrollment, dict(hooks.base)), timeout)
        else:  # user code that may block: on the hook pool, never on the event loop
            result = await services.hook_pool.run(timeout, fn, hooks.enrollment, dict(hooks.base))
        if inspect.isawaitable(result):
            result = await asyncio.wait_for(result, timeout)
    except TimeoutError:
        raise PermanentError(f"template function took longer than {timeout:g}s") from None
    except Exception as exc:
        raise PermanentError(f"template function raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(result, dict):
        raise PermanentError("a module template must return a dict of the channel's fields")
    return result


async def render_fields(
    step: StepDef, base: dict[str, Any], hooks: HookValues, services: Any
) -> dict[str, Any]:
    """The step's config rendered with the context (hook values fetched only when named)."""
    engine = step.config.get("template_engine", "liquid")
    if step.template_type == "inline":  # the hot path: names and fields known per step
        if hooks.version.has_hooks:  # else there is nothing to fetch (skip the set arithmetic)
            await hooks.fill(step.template_names - base.keys())
        context = {**base, **hooks.values} if hooks.values else base
        flat = step.flat_config
        if flat is not None:
            try:
                return flat.render(context, slice_after=INLINE_SLICE)
            except SliceExpired as slow:
                return await asyncio.to_thread(flat.render, context, started=slow.started)
        return await _render_config(step.message_config, context, engine, step.channel)
    config = {k: v for k, v in step.config.items() if k not in ENGINE_KEYS}
    if step.template_type == "module":
        return {**config, **await _module_fields(step, hooks)}
    if step.template_type == "external":
        fetched = await _fetch_external(services, step.template_content["url"])
        if isinstance(fetched, dict):
            config.update(fetched)
        else:
            config[MAIN_FIELD.get(step.channel, "body")] = fetched
    await hooks.fill(referenced_names(config, engine) - base.keys())
    context = {**base, **hooks.values} if hooks.values else base
    return await _render_config(config, context, engine, step.channel)


async def _render_config(
    config: Any, context: dict[str, Any], engine: str, channel: str
) -> dict[str, Any]:
    """render_config on the event loop for up to INLINE_SLICE, then on a thread."""
    rendered: dict[str, Any]
    try:
        rendered = render_config(config, context, engine, channel=channel, slice_after=INLINE_SLICE)
    except SliceExpired as slow:
        rendered = await asyncio.to_thread(
            render_config, config, context, engine, channel=channel, started=slow.started
        )
    return rendered
