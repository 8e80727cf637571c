"""The step builder: a version as a vertical flow; add, edit, reorder and delete steps and
their conditions; activate with the readiness check first; a timeline preview (simulate)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from dripdrop.channels.base import CHANNELS
from dripdrop.definitions.conditions import CONDITION_TYPES, OPERATORS
from dripdrop.errors import NotFound, ValidationError
from dripdrop.operations import OPERATIONS
from dripdrop.records import SequenceVersion
from dripdrop.web.dashboard.pages.common import (
    Form,
    call,
    check_adapters,
    condition_of,
    hook_of,
    parse_id,
    redirect,
    router,
    step_of,
    version_of,
)
from dripdrop.web.dashboard.pages.sequences import sequence_by_id
from dripdrop.web.dashboard.render import page

pages = router()

#: The message fields the form offers per channel (others go in "More settings (JSON)").
CHANNEL_FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("subject", "body", "text", "from", "reply_to", "to"),
    "sms": ("body", "to", "from"),
    "webhook": ("url", "method", "body"),
    "pubsub": ("topic", "event"),
    "slack": ("text", "channel"),
    "telegram": ("text", "chat_id", "parse_mode"),
    "discord": ("content",),
    "msteams": ("title", "text"),
    "apprise": ("title", "body"),
}
LONG_FIELDS = frozenset({"body", "text", "content"})
TIMING_KINDS = ("immediate", "delay", "cron", "event")
UNITS = ("minutes", "hours", "days", "weeks")
_EVENT_LINE = re.compile(r"^\s*(\d+)\s*([mhdw])\s+(\S+)\s*$")
_UNIT_OF = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


async def version_by_id(request: Request, version_id: Any) -> SequenceVersion:
    """The version (NotFound for another tenant's, in a tenant's session)."""
    return await version_of(request, version_id)


def _timing(form: Form) -> dict[str, Any]:
    """The timing dict the form describes (the operation validates it)."""
    kind = form.get("timing.type", "immediate")
    if kind == "delay":
        timing: dict[str, Any] = {
            "type": "delay",
            "delay_amount": form.integer("timing.delay_amount"),
            "delay_unit": form.get("timing.delay_unit", "days"),
        }
        if form.flag("timing.after_previous"):
            timing["relative_to"] = "previous_step"
        return timing
    if kind == "cron":
        return {
            "type": "cron",
            "cron_expression": form.get("timing.cron_expression").strip(),
            "timezone": form.get("timing.timezone").strip() or "UTC",
        }
    if kind == "event":
        timing = {"type": "event", "trigger_event": form.get("timing.trigger_event").strip()}
        if form.get("timing.timeout_amount").strip():
            timing["timeout_amount"] = form.integer("timing.timeout_amount")
            timing["timeout_unit"] = form.get("timing.timeout_unit", "days")
        return timing
    return {"type": kind}


def _step_values(form: Form, errors: dict[str, list[str]]) -> dict[str, Any]:
    """create_step/update_step arguments from the form."""
    channel = form.get("channel", "email")
    config: dict[str, Any] = dict(form.json("config", errors, {}) or {})
    for name in CHANNEL_FIELDS.get(channel, ()):
        value = form.get(f"config.{name}")
        if value.strip():
            config[name] = value
    values: dict[str, Any] = {
        "name": form.get("name").strip(),
        "channel": channel,
        "timing": _timing(form),
        "config": config,
    }
    adapter = form.optional("channel_adapter_id")
    values["channel_adapter_id"] = adapter
    return values


def _form_of_step(step: Any) -> dict[str, Any]:
    """A stored step as the form's field values."""
    timing = step.timing or {}
    out: dict[str, Any] = {
        "name": step.name,
        "key": step.key,
        "channel": step.channel,
        "channel_adapter_id": str(step.channel_adapter_id or ""),
    }
    out["timing.type"] = timing.get("type", "immediate")
    for k, v in timing.items():
        out[f"timing.{k}"] = v
    out["timing.after_previous"] = timing.get("relative_to") == "previous_step"
    shown = set(CHANNEL_FIELDS.get(step.channel, ()))
    extra = {}
    for k, v in (step.config or {}).items():
        if k in shown and isinstance(v, str):
            out[f"config.{k}"] = v
        else:
            extra[k] = v
    if extra:
        import json

        out["config"] = json.dumps(extra, indent=2)
    return out


async def _builder(
    request: Request, version: SequenceVersion, status: int = 200, **extra: Any
) -> Response:
    seq = await sequence_by_id(request, version.sequence_id)
    steps = await call(request, "list_steps", version.id)
    conditions = {s.id: await call(request, "list_conditions", s.id) for s in steps}
    transitions: list[Any] | None = None
    if "list_transitions" in OPERATIONS:  # flow control, when installed
        transitions = await call(request, "list_transitions", version.id)
    adapters = await call(request, "list_channel_adapters", tenant_key=seq.tenant_key)
    hooks = await call(request, "list_http_hooks", seq.id)
    problems = await call(request, "check_version", version.id)
    active = await call(request, "get_active_version", seq.id)
    context: dict[str, Any] = {
        "form": {"channel": "email", "timing.type": "immediate"},
        "errors": {},
        "cond_form": {},
        "cond_errors": {},
        "cond_step": None,
        "confirm": False,
    }
    context.update(extra)
    return page(
        request,
        "builder.html",
        status,
        section="sequences",
        seq=seq,
        version=version,
        steps=steps,
        conditions=conditions,
        transitions=transitions,
        adapters=adapters,
        hooks=hooks,
        problems=problems,
        active_version=active,
        channels=CHANNELS,
        channel_fields=CHANNEL_FIELDS,
        long_fields=LONG_FIELDS,
        timing_kinds=TIMING_KINDS,
        units=UNITS,
        condition_types=CONDITION_TYPES,
        operators=OPERATORS,
        step_names={s.id: s.name for s in steps},
        **context,
    )


@pages.get("/versions/{version_id}")
async def builder(request: Request, version_id: str) -> Response:
    return await _builder(request, await version_by_id(request, version_id))


@pages.get("/versions/{version_id}/step-fields")
async def step_fields(request: Request, version_id: str) -> Response:
    """The channel-specific part of the step form (htmx swaps it when the channel changes)."""
    version = await version_by_id(request, version_id)
    channel = request.query_params.get("channel", "email")
    return page(
        request,
        "_step_channel_fields.html",
        version=version,
        channels=CHANNELS,
        channel_fields=CHANNEL_FIELDS,
        long_fields=LONG_FIELDS,
        adapters=await call(request, "list_channel_adapters", tenant_key=version.tenant_key),
        form={"channel": channel},
        errors={},
    )


@pages.post("/versions/{version_id}/steps")
async def add_step(request: Request, version_id: str) -> Response:
    version = await version_by_id(request, version_id)
    form = await Form.of(request)
    errors: dict[str, list[str]] = {}
    values = _step_values(form, errors)
    try:
        if errors:
            raise ValidationError(errors)
        await check_adapters(request, values)
        await call(request, "create_step", version.id, key=form.optional("key"), **values)
    except ValidationError as exc:
        return await _builder(request, version, 422, form=form.values(), errors=exc.errors)
    return redirect(request, f"/versions/{version.id}")


async def _step_page(request: Request, step: Any, status: int = 200, **extra: Any) -> Response:
    version = await version_by_id(request, step.sequence_version_id)
    seq = await sequence_by_id(request, version.sequence_id)
    context: dict[str, Any] = {"form": _form_of_step(step), "errors": {}}
    context.update(extra)
    return page(
        request,
        "step.html",
        status,
        section="sequences",
        seq=seq,
        version=version,
        step=step,
        channels=CHANNELS,
        channel_fields=CHANNEL_FIELDS,
        long_fields=LONG_FIELDS,
        timing_kinds=TIMING_KINDS,
        units=UNITS,
        adapters=await call(request, "list_channel_adapters", tenant_key=version.tenant_key),
        **context,
    )


@pages.get("/steps/{step_id}")
async def edit_step(request: Request, step_id: str) -> Response:
    return await _step_page(request, await step_of(request, step_id))


@pages.post("/steps/{step_id}")
async def update_step(request: Request, step_id: str) -> Response:
    step = await step_of(request, step_id)
    form = await Form.of(request)
    errors: dict[str, list[str]] = {}
    values = _step_values(form, errors)
    try:
        if errors:
            raise ValidationError(errors)
        await check_adapters(request, values)
        await call(request, "update_step", step.id, **values)
    except ValidationError as exc:
        return await _step_page(request, step, 422, form=form.values(), errors=exc.errors)
    return redirect(request, f"/versions/{step.sequence_version_id}")


@pages.post("/steps/{step_id}/move")
async def move_step(request: Request, step_id: str) -> Response:
    """Up or down by one: the version's steps are renumbered 1..n in the new order."""
    step = await step_of(request, step_id)
    form = await Form.of(request)
    steps = await call(request, "list_steps", step.sequence_version_id)
    order = [s.id for s in steps]
    i = order.index(step.id)
    j = i - 1 if form.get("direction") == "up" else i + 1
    if 0 <= j < len(order):
        order[i], order[j] = order[j], order[i]
        positions = {s.id: s.position for s in steps}
        for n, sid in enumerate(order, start=1):
            if positions[sid] != n:
                await call(request, "update_step", sid, position=n)
    return redirect(request, f"/versions/{step.sequence_version_id}")


@pages.post("/steps/{step_id}/delete")
async def delete_step(request: Request, step_id: str) -> Response:
    step = await step_of(request, step_id)
    await call(request, "delete_step", step.id)
    return redirect(request, f"/versions/{step.sequence_version_id}")


async def _own_hook(request: Request, hook_id: str) -> None:
    """Another tenant's HTTP hook is reported as not existing, on the field."""
    try:
        await hook_of(request, hook_id)
    except NotFound:
        missing = f"HTTP hook {hook_id} does not exist"
        raise ValidationError.single("http_hook_id", missing) from None


@pages.post("/steps/{step_id}/conditions")
async def add_condition(request: Request, step_id: str) -> Response:
    step = await step_of(request, step_id)
    form = await Form.of(request)
    errors: dict[str, list[str]] = {}
    kind = form.get("condition_type")
    config = form.json("config", errors, None)
    if kind == "event" and form.optional("event_key"):
        config = {**(config or {}), "event_key": form.get("event_key").strip()}
    values: dict[str, Any] = {
        "condition_type": kind,
        "operator": form.get("operator", "eq"),
        "field_path": form.optional("field_path"),
        "expected_value": form.optional("expected_value"),
        "http_hook_id": form.optional("http_hook_id") if kind == "hook" else None,
        "hook_function": form.optional("hook_function") if kind == "hook" else None,
        "config": config,
    }
    version = await version_by_id(request, step.sequence_version_id)
    try:
        if errors:
            raise ValidationError(errors)
        if values["http_hook_id"]:
            await _own_hook(request, values["http_hook_id"])
        await call(request, "create_condition", step.id, **values)
    except ValidationError as exc:
        return await _builder(
            request,
            version,
            422,
            cond_form=form.values(),
            cond_errors=exc.errors,
            cond_step=step.id,
        )
    return redirect(request, f"/versions/{version.id}")


@pages.post("/conditions/{condition_id}/delete")
async def delete_condition(request: Request, condition_id: str) -> Response:
    form = await Form.of(request)
    version_id = parse_id(form.get("version_id"), "version_id")
    found = await condition_of(request, condition_id)
    await call(request, "delete_condition", found.id)
    return redirect(request, f"/versions/{version_id}")


@pages.post("/versions/{version_id}/activate")
async def activate(request: Request, version_id: str) -> Response:
    """The readiness check's problems are shown first; "activate anyway" forces it."""
    version = await version_by_id(request, version_id)
    form = await Form.of(request)
    force = form.flag("force")
    problems = await call(request, "check_version", version.id)
    if problems and not force:
        return await _builder(request, version, 409, confirm=True)
    await call(request, "activate_version", version.id, force=force)
    return redirect(request, f"/versions/{version.id}")


def _events(text: str) -> list[tuple[timedelta, str, dict[str, Any]]]:
    """ "2d paid" lines → simulate's events."""
    events = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _EVENT_LINE.match(line)
        if match is None:
            raise ValidationError.single(
                "events",
                f"line {n}: write each event as '<number><m|h|d|w> <event_key>', e.g. '2d paid'",
            )
        amount, unit, key = match.groups()
        events.append((timedelta(**{_UNIT_OF[unit]: int(amount)}), key, {}))
    return events


@pages.post("/versions/{version_id}/simulate")
async def simulate(request: Request, version_id: str) -> Response:
    """What a subscriber with the given data and events would get on this version (a draft
    too: ``simulate(version_id=...)``)."""
    version = await version_by_id(request, version_id)
    seq = await sequence_by_id(request, version.sequence_id)
    form = await Form.of(request)
    errors: dict[str, list[str]] = {}
    data = form.json("data", errors, {})
    timeline, error = None, None
    try:
        if errors:
            raise ValidationError(errors)
        days = form.integer("until_days") or 30
        if not isinstance(days, int) or not 1 <= days <= 3660:
            raise ValidationError.single("until_days", "must be a number of days from 1 to 3660")
        timeline = await call(
            request,
            "simulate",
            seq.key,
            data=data,
            events=_events(form.get("events")),
            until=timedelta(days=days),
            tenant_key=seq.tenant_key,
            version_id=version.id,
        )
    except ValidationError as exc:
        error = exc
    return page(request, "_timeline.html", timeline=timeline, error=error, version=version)
