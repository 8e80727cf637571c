"""Templates: the AI builder (generate, improve, translate) and ``check_templates``.

The model the builder uses is the provider's (ANTHROPIC_API_KEY / OPENAI_API_KEY), unless the
host set ``app.state.template_model`` to a pydantic-ai Model object (another provider, or a
FunctionModel in tests), which then answers every request. A missing ``ai`` extra or key is a 400
problem naming what to install or set (the API answers no 5xx for a deployment choice); a model
that failed or never produced a valid template is a 502 problem with its last ``problems``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from dripdrop.web.auth import Principal, require
from dripdrop.web.encode import encode
from dripdrop.web.problems import problem
from dripdrop.web.routes.common import Body, dd_of

router = APIRouter(tags=["templates"])


class _Options(Body):
    category: str | None = None
    provider: str | None = None
    model: str | None = None
    max_repairs: int = 3
    max_sms_segments: int = 3


class GenerateIn(_Options):
    description: str
    channel: str = "email"
    available_variables: list[str] | dict[str, Any] = []  # names, or name → example value
    engine: str = "liquid"
    tone: str | None = None
    language: str | None = None


class _Rewrite(_Options):
    template: dict[str, Any]  # the fields (subject, preheader, body, text) or a step config
    channel: str | None = None
    engine: str | None = None
    available_variables: list[str] | dict[str, Any] | None = None


class ImproveIn(_Rewrite):
    instruction: str


class TranslateIn(_Rewrite):
    language: str


class CheckIn(Body):
    sequence_key: str | None = None
    data: dict[str, Any] | None = None
    tenant_key: str | None = None
    max_sms_segments: int = 3


async def _answer(request: Request, run: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run the builder with the app's model (if any); its failures as problem+json."""
    from dripdrop.ai.errors import AIProviderError, AIUnavailable, TemplateGenerationError

    model = getattr(request.app.state, "template_model", None)
    try:
        result = await run(model)
    except AIUnavailable as exc:
        return problem(400, str(exc))
    except TemplateGenerationError as exc:
        return problem(502, str(exc), problems=exc.problems, attempts=exc.attempts)
    except AIProviderError as exc:
        return problem(502, str(exc))
    return {**encode(result), "step_config": result.step_config}


def _model_options(body: _Options, model: Any) -> dict[str, Any]:
    return {
        "category": body.category,
        "provider": body.provider,
        "model": model if model is not None else body.model,
        "max_repairs": body.max_repairs,
        "max_sms_segments": body.max_sms_segments,
    }


@router.post("/templates/generate")
async def generate_template(
    body: GenerateIn, request: Request, who: Principal = require("write")
) -> Any:
    """A template written by the AI builder from ``description``, validated before it is
    returned (``repairs``, ``usage``; ``step_config`` is ready for a step)."""
    from dripdrop import ai

    return await _answer(
        request,
        lambda model: ai.agenerate_template(
            body.description,
            body.channel,
            body.available_variables,
            engine=body.engine,
            tone=body.tone,
            language=body.language,
            **_model_options(body, model),
        ),
    )


@router.post("/templates/improve")
async def improve_template(
    body: ImproveIn, request: Request, who: Principal = require("write")
) -> Any:
    """``template`` rewritten following ``instruction``, validated like a new one."""
    from dripdrop import ai

    return await _answer(
        request,
        lambda model: ai.aimprove_template(
            body.template,
            body.instruction,
            channel=body.channel,
            engine=body.engine,
            available_variables=body.available_variables,
            **_model_options(body, model),
        ),
    )


@router.post("/templates/translate")
async def translate_template(
    body: TranslateIn, request: Request, who: Principal = require("write")
) -> Any:
    """``template`` translated into ``language``, validated like a new one."""
    from dripdrop import ai

    return await _answer(
        request,
        lambda model: ai.atranslate_template(
            body.template,
            body.language,
            channel=body.channel,
            engine=body.engine,
            available_variables=body.available_variables,
            **_model_options(body, model),
        ),
    )


@router.post("/templates/check")
def check_templates(body: CheckIn, request: Request, who: Principal = require("write")) -> Any:
    """Render every step of the active versions (or of ``sequence_key``'s) with ``data`` or
    sample data; ``ok`` is false when a problem of severity "error" was found. A tenant-bound
    key checks only its tenant's sequences."""
    tenant = who.tenant_for(body.tenant_key)
    found = dd_of(request).check_templates(
        body.sequence_key,
        body.data,
        tenant_key=tenant,
        max_sms_segments=body.max_sms_segments,
    )
    ok = not any(p.severity == "error" for p in found)
    return JSONResponse({"ok": ok, "items": encode(found), "next_cursor": None})
