"""HTTP hooks: configure, test with sample data, see the last test's request and answer."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from dripdrop.definitions.http_hooks import AUTH_TYPES, METHODS, RESPONSE_TYPES
from dripdrop.errors import ValidationError
from dripdrop.records import HttpHook
from dripdrop.web.dashboard.pages.common import (
    Form,
    call,
    hook_of,
    parse_id,
    redirect,
    router,
    tenant,
)
from dripdrop.web.dashboard.pages.sequences import sequence_by_id
from dripdrop.web.dashboard.render import page

pages = router()
#: The auth_config keys each auth type reads (all write-only).
AUTH_FIELDS = {
    "none": (),
    "bearer": ("token",),
    "basic": ("username", "password"),
    "header": ("name", "value"),
}


async def _hook(request: Request, hook_id: str) -> HttpHook:
    """The hook (NotFound for another tenant's, in a tenant's session)."""
    return await hook_of(request, hook_id)


@pages.get("/hooks")
async def hooks(request: Request) -> Response:
    sequences = await call(request, "list_sequences", tenant_key=tenant(request))
    items = [(seq, await call(request, "list_http_hooks", seq.id)) for seq in sequences]
    return page(request, "hooks.html", section="hooks", items=items, sequences=sequences)


def _values(
    form: Form, errors: dict[str, list[str]], current_auth: dict[str, Any] | None
) -> dict[str, Any]:
    auth_type = form.get("auth_type", "none")
    auth = dict(current_auth or {}) if current_auth is not None else {}
    replaced = current_auth is None
    for name in AUTH_FIELDS.get(auth_type, ()):
        value = form.get(f"auth_config.{name}").strip()
        if value:
            auth[name] = value
            replaced = True
    values: dict[str, Any] = {
        "name": form.get("name").strip(),
        "url": form.get("url").strip(),
        "method": form.get("method", "POST"),
        "auth_type": auth_type,
        "headers": form.json("headers", errors, None),
        "body_template": form.optional("body_template"),
        "response_path": form.optional("response_path"),
        "response_type": form.get("response_type", "json"),
        "timeout_ms": form.integer("timeout_ms") or 5000,
        "retry_count": form.integer("retry_count") if form.get("retry_count").strip() else 2,
        "description": form.optional("description"),
        "active": form.flag("active"),
    }
    if replaced:
        values["auth_config"] = (
            {k: v for k, v in auth.items() if k in AUTH_FIELDS[auth_type]}
            if auth_type in AUTH_FIELDS
            else auth
        )
    return values


def _form_page(
    request: Request,
    seq: Any,
    hook: Any,
    form: dict[str, Any],
    errors: dict[str, list[str]],
    status: int = 200,
    result: Any = None,
) -> Response:
    return page(
        request,
        "hook_form.html",
        status,
        section="hooks",
        seq=seq,
        hook=hook,
        form=form,
        errors=errors,
        methods=METHODS,
        auth_types=AUTH_TYPES,
        auth_fields=AUTH_FIELDS,
        response_types=RESPONSE_TYPES,
        result=result,
        stored_auth=set(hook.auth_config.reveal()) if hook else set(),
    )


def _form_of(hook: HttpHook) -> dict[str, Any]:
    import json

    out = {
        k: getattr(hook, k)
        for k in (
            "name",
            "key",
            "url",
            "method",
            "auth_type",
            "body_template",
            "response_path",
            "response_type",
            "timeout_ms",
            "retry_count",
            "description",
            "active",
        )
    }
    out["headers"] = json.dumps(hook.headers) if hook.headers else ""
    return out


@pages.get("/hooks/new")
async def new_hook(request: Request) -> Response:
    seq = await sequence_by_id(
        request, parse_id(request.query_params.get("sequence", ""), "sequence")
    )
    return _form_page(
        request,
        seq,
        None,
        {
            "method": "POST",
            "response_type": "json",
            "active": True,
            "timeout_ms": 5000,
            "retry_count": 2,
        },
        {},
    )


@pages.post("/hooks")
async def create_hook(request: Request) -> Response:
    form = await Form.of(request)
    seq = await sequence_by_id(request, parse_id(form.get("sequence_id"), "sequence_id"))
    errors: dict[str, list[str]] = {}
    values = _values(form, errors, None)
    try:
        if errors:
            raise ValidationError(errors)
        hook = await call(
            request, "create_http_hook", seq.id, key=form.get("key").strip(), **values
        )
    except ValidationError as exc:
        shown = {k: v for k, v in form.values().items() if not k.startswith("auth_config.")}
        return _form_page(request, seq, None, shown, exc.errors, 422)
    return redirect(request, f"/hooks/{hook.id}")


@pages.get("/hooks/{hook_id}")
async def hook(request: Request, hook_id: str) -> Response:
    found = await _hook(request, hook_id)
    seq = await sequence_by_id(request, found.sequence_id)
    return _form_page(request, seq, found, _form_of(found), {})


@pages.post("/hooks/{hook_id}")
async def update_hook(request: Request, hook_id: str) -> Response:
    found = await _hook(request, hook_id)
    seq = await sequence_by_id(request, found.sequence_id)
    form = await Form.of(request)
    errors: dict[str, list[str]] = {}
    values = _values(form, errors, found.auth_config.reveal())
    try:
        if errors:
            raise ValidationError(errors)
        await call(request, "update_http_hook", found.id, **values)
    except ValidationError as exc:
        shown = {k: v for k, v in form.values().items() if not k.startswith("auth_config.")}
        return _form_page(request, seq, found, shown, exc.errors, 422)
    return redirect(request, f"/hooks/{found.id}")


@pages.post("/hooks/{hook_id}/test")
async def test_hook(request: Request, hook_id: str) -> Response:
    """Call the hook with sample data now; the answer is shown and stored as its last test."""
    found = await _hook(request, hook_id)
    form = await Form.of(request)
    errors: dict[str, list[str]] = {}
    data = form.json("test_data", errors, {})
    if errors:
        raise ValidationError(errors)
    result = await call(request, "test_http_hook", found.id, test_data=data)
    return page(request, "_hook_test.html", result=result)
