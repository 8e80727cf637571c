"""The AI template builder (the ``ai`` extra): describe a message, get a validated template,
use it in a step of a draft or active version."""

from __future__ import annotations

import importlib.util
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from dripdrop.errors import DripDropError, ValidationError
from dripdrop.web.dashboard.pages.common import (
    Form,
    call,
    check_adapters,
    redirect,
    router,
    tenant,
    version_of,
)
from dripdrop.web.dashboard.render import page

pages = router()
CHANNELS = ("email", "sms", "slack", "telegram")
ENGINES = ("liquid", "mjml", "mustache", "jinja")
CATEGORIES = ("", "marketing", "product", "transactional")


def _installed() -> bool:
    try:
        return importlib.util.find_spec("dripdrop.ai") is not None and (
            importlib.util.find_spec("pydantic_ai") is not None
        )
    except ModuleNotFoundError:
        return False


def _model(request: Request) -> Any:
    """A pydantic-ai Model the host set on the app (tests, other providers), else None."""
    return getattr(request.app.state, "template_model", None)


def _available(request: Request) -> tuple[bool, str | None]:
    if not _installed():
        return False, None
    from dripdrop import ai

    if ai.available(_model(request)):
        return True, None
    return False, ai.unavailable_reason()


async def _versions(request: Request) -> list[tuple[str, str]]:
    """Every version of every sequence, as (id, label) for the "use in step" choice."""
    out = []
    for seq in await call(request, "list_sequences", tenant_key=tenant(request)):
        for v in await call(request, "list_versions", seq.id):
            state = "active" if v.active else "draft"
            out.append((str(v.id), f"{seq.name} · v{v.version} ({state})"))
    return out


async def _page(
    request: Request,
    form: dict[str, str],
    errors: dict[str, list[str]],
    result: Any = None,
    status: int = 200,
) -> Response:
    available, reason = _available(request)
    return page(
        request,
        "template_builder.html",
        status,
        section="template_builder",
        installed=_installed(),
        available=available,
        reason=reason,
        form=form,
        errors=errors,
        result=result,
        channels=[(c, c) for c in CHANNELS],
        engines=[(e, e) for e in ENGINES],
        categories=[(c, c or "none") for c in CATEGORIES],
        versions=await _versions(request) if result is not None else [],
    )


@pages.get("/template-builder")
async def template_builder(request: Request) -> Response:
    return await _page(request, {"channel": "email", "engine": "liquid"}, {})


@pages.post("/template-builder")
async def generate(request: Request) -> Response:
    """Generate: the builder validates (and has the model repair) before anything is shown."""
    form = await Form.of(request)
    shown = form.values()
    available, _ = _available(request)
    if not available:
        return await _page(request, shown, {}, status=400)
    from dripdrop import ai

    variables = [v.strip() for v in form.get("variables").split(",") if v.strip()]
    try:
        result = await ai.agenerate_template(
            form.get("description"),
            form.get("channel") or "email",
            variables,
            engine=form.get("engine") or "liquid",
            tone=form.optional("tone"),
            language=form.optional("language"),
            category=form.optional("category"),
            model=_model(request),
        )
    except ValidationError as exc:
        return await _page(request, shown, exc.errors, status=422)
    except DripDropError as exc:  # the model failed, or never produced a valid template
        problems = getattr(exc, "problems", None) or []
        return await _page(request, shown, {"description": [str(exc), *problems]}, status=502)
    return await _page(request, shown, {}, result=result)


@pages.post("/template-builder/use")
async def use_in_step(request: Request) -> Response:
    """Create a step with the generated template in the chosen version (its builder opens)."""
    form = await Form.of(request)
    version_id = (await version_of(request, form.get("version_id"))).id
    errors: dict[str, list[str]] = {}
    config = form.json("step_config", errors, {})
    if errors:
        raise ValidationError(errors)
    await check_adapters(request, {"config": config})
    await call(
        request,
        "create_step",
        version_id,
        name=form.get("name").strip() or "Generated message",
        channel=form.get("channel"),
        config=config,
    )
    return redirect(request, f"/versions/{version_id}")
