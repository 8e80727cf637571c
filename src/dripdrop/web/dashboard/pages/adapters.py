"""Channel adapters: list (with health when the analytics module provides it), create and edit
with forms generated from the provider declarations, send a test message."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from dripdrop.channels.base import CHANNELS
from dripdrop.channels.registry import all_specs, get_spec
from dripdrop.errors import ValidationError
from dripdrop.operations import OPERATIONS
from dripdrop.web.dashboard import provider_forms
from dripdrop.web.dashboard.adapter_test import send_test
from dripdrop.web.dashboard.pages.common import (
    Form,
    adapter_of,
    call,
    dd_of,
    redirect,
    router,
    run,
    tenant,
    who,
)
from dripdrop.web.dashboard.render import page

pages = router()


async def _health(request: Request) -> dict[Any, Any]:
    """Per adapter: sends, error rate, p50/p95 latency over 24 h, from the analytics module's
    ``adapter_health`` operation when it is installed."""
    if "adapter_health" not in OPERATIONS:
        return {}
    scope: dict[str, Any] = (
        {"tenant_key": tenant(request)} if who(request).bound else {"every_tenant": True}
    )
    try:
        rows = await call(request, "adapter_health", **scope)
    except Exception:  # health is extra information: the list must show without it
        return {}
    return {r.adapter_id: r for r in rows}


@pages.get("/adapters")
async def adapters(request: Request) -> Response:
    items = await call(request, "list_channel_adapters", tenant_key=tenant(request))
    specs = all_specs()
    return page(
        request,
        "adapters.html",
        section="adapters",
        items=items,
        specs=specs,
        channels=CHANNELS,
        health=await _health(request),
    )


def _form_page(
    request: Request,
    spec: Any,
    adapter: Any,
    form: dict[str, Any],
    errors: dict[str, list[str]],
    status: int = 200,
    outcome: Any = None,
) -> Response:
    stored = set(adapter.credentials.reveal()) if adapter is not None else set()
    return page(
        request,
        "adapter_form.html",
        status,
        section="adapters",
        spec=spec,
        adapter=adapter,
        fields=provider_forms.form_fields(spec),
        stored=stored,
        mask=provider_forms.MASK,
        form=form,
        errors=errors,
        outcome=outcome,
    )


@pages.get("/adapters/new")
async def new_adapter(request: Request) -> Response:
    q = request.query_params
    channel, _, provider = q.get("provider", "").partition("/")  # "email/mailgun"
    spec = get_spec(q.get("channel") or channel, provider)
    return _form_page(request, spec, None, {"name": "", "active": True}, {})


def _config_form(adapter: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": adapter.name,
        "is_default": adapter.is_default,
        "active": adapter.active,
    }
    for k, v in (adapter.config or {}).items():
        values[f"config.{k}"] = v
    return values


@pages.post("/adapters")
async def create_adapter(request: Request) -> Response:
    form = await Form.of(request)
    spec = get_spec(form.get("channel"), form.get("provider"))
    creds, config, errors = provider_forms.read(spec, form)
    try:
        if errors:
            raise ValidationError(errors)
        adapter = await call(
            request,
            "create_channel_adapter",
            name=form.get("name").strip(),
            channel=spec.channel,
            provider=spec.name,
            credentials=creds,
            config=config,
            is_default=form.flag("is_default") or None,
            active=form.flag("active"),
            tenant_key=tenant(request),
        )
    except ValidationError as exc:
        values = {k: v for k, v in form.values().items() if not k.startswith("credentials.")}
        return _form_page(request, spec, None, values, exc.errors, 422)
    return redirect(request, f"/adapters/{adapter.id}")


@pages.get("/adapters/{adapter_id}")
async def adapter(request: Request, adapter_id: str) -> Response:
    found = await adapter_of(request, adapter_id)
    return _form_page(
        request, get_spec(found.channel, found.provider), found, _config_form(found), {}
    )


@pages.post("/adapters/{adapter_id}")
async def update_adapter(request: Request, adapter_id: str) -> Response:
    found = await adapter_of(request, adapter_id)
    spec = get_spec(found.channel, found.provider)
    form = await Form.of(request)
    creds, config, errors = provider_forms.read(spec, form, found.credentials.reveal())
    changes: dict[str, Any] = {
        "name": form.get("name").strip(),
        "config": config,
        "is_default": form.flag("is_default"),
        "active": form.flag("active"),
    }
    if creds is not None:
        changes["credentials"] = creds
    try:
        if errors:
            raise ValidationError(errors)
        await call(request, "update_channel_adapter", found.id, **changes)
    except ValidationError as exc:
        values = {k: v for k, v in form.values().items() if not k.startswith("credentials.")}
        return _form_page(request, spec, found, values, exc.errors, 422)
    return redirect(request, f"/adapters/{found.id}")


@pages.post("/adapters/{adapter_id}/test")
async def test_adapter(request: Request, adapter_id: str) -> Response:
    found = await adapter_of(request, adapter_id)
    form = await Form.of(request)
    outcome = await run(
        send_test,
        dd_of(request).runtime,
        found,
        form.get("recipient").strip(),
        form.get("text").strip() or "Hello from DripDrop",
    )
    return page(request, "_adapter_test.html", outcome=outcome)
