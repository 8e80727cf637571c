"""The AI template builder (extra ``ai``: pydantic-ai-slim with Anthropic and OpenAI).

``generate_template`` writes a template from a description; ``improve_template`` rewrites one
following an instruction; ``translate_template`` translates one. Every answer is validated before
it is returned (see dripdrop.ai.validate) and sent back to the model with its problems until it
passes, at most ``max_repairs`` times; then :class:`TemplateGenerationError`. Each function has an
``a``-prefixed coroutine twin (``agenerate_template``…) for async code. ``model=`` takes a model
name of ``provider`` or any pydantic-ai Model object (FunctionModel, TestModel, your own).
See docs/ai.md.
"""

from __future__ import annotations

from typing import Any

from dripdrop.ai.builder import build, run_sync
from dripdrop.ai.errors import AIProviderError, AIUnavailable, TemplateGenerationError
from dripdrop.ai.models import PROVIDERS, installed, is_model_object, unavailable_reason
from dripdrop.ai.prompts import improve_prompt, translate_prompt
from dripdrop.ai.validate import (
    check_prompt_text,
    check_repairs,
    make_spec,
    template_fields,
    used_variables,
)
from dripdrop.definitions.inputs import describe
from dripdrop.errors import ValidationError
from dripdrop.records import GeneratedTemplate
from dripdrop.templates.check import DEFAULT_MAX_SMS_SEGMENTS

DEFAULT_MAX_REPAIRS = 3

__all__ = [
    "DEFAULT_MAX_REPAIRS",
    "AIProviderError",
    "AIUnavailable",
    "GeneratedTemplate",
    "TemplateGenerationError",
    "agenerate_template",
    "aimprove_template",
    "atranslate_template",
    "available",
    "generate_template",
    "improve_template",
    "translate_template",
    "unavailable_reason",
]


def available(model: Any = None) -> bool:
    """Can templates be generated here? The ``ai`` extra is installed and either ``model`` is a
    pydantic-ai Model object or a provider key is set (ANTHROPIC_API_KEY / OPENAI_API_KEY)."""
    if not installed():
        return False
    return is_model_object(model) or unavailable_reason() is None


def _check_model(provider: Any, model: Any) -> None:
    errors: dict[str, list[str]] = {}
    if provider is not None and not (isinstance(provider, str) and provider in PROVIDERS):
        errors["provider"] = [
            f"must be one of {', '.join(PROVIDERS)} or None, not {describe(provider)}"
        ]
    named = isinstance(model, str) and model.strip() and len(model) <= 200
    if model is not None and not named and not is_model_object(model):
        errors["model"] = ["must be a model name or a pydantic-ai Model object"]
    if errors:
        raise ValidationError(errors)


async def agenerate_template(
    description: str,
    channel: str = "email",
    available_variables: list[str] | tuple[str, ...] | dict[str, Any] = (),
    *,
    engine: str = "liquid",
    tone: str | None = None,
    language: str | None = None,
    category: str | None = None,
    provider: str | None = None,
    model: Any = None,
    max_repairs: int = DEFAULT_MAX_REPAIRS,
    max_sms_segments: int = DEFAULT_MAX_SMS_SEGMENTS,
) -> GeneratedTemplate:
    """A validated template for ``channel`` written from ``description``, reading only
    ``available_variables`` (and the built-ins, ``unsubscribe_url`` among them). ``category=
    "marketing"`` requires an unsubscribe link in emails."""
    spec = make_spec(channel, engine, available_variables, category, max_sms_segments)
    prompt = check_prompt_text(description, "description")
    tone = check_prompt_text(tone, "tone", optional=True, limit=200)
    language = check_prompt_text(language, "language", optional=True, limit=100)
    repairs = check_repairs(max_repairs)
    _check_model(provider, model)
    return await build(
        f"Write this template: {prompt}",
        spec,
        tone=tone,
        language=language,
        provider=provider,
        model=model,
        max_repairs=repairs,
    )


async def _rewrite(
    template: Any,
    make_prompt: Any,
    argument: str,
    *,
    channel: str | None,
    engine: str | None,
    available_variables: Any,
    category: str | None,
    language: str | None,
    provider: str | None,
    model: Any,
    max_repairs: int,
    max_sms_segments: int,
) -> GeneratedTemplate:
    fields, found_channel, found_engine = template_fields(template)
    channel = channel or found_channel or ("email" if "subject" in fields else None)
    if channel is None:
        raise ValidationError.single("channel", "is required for a template given as a dict")
    name = engine or found_engine or "liquid"
    if available_variables is None:  # keep what the template reads today
        spec = make_spec(channel, name, [], category, max_sms_segments)
        available_variables = sorted(used_variables(fields, spec.engine))
    spec = make_spec(channel, name, available_variables, category, max_sms_segments)
    repairs = check_repairs(max_repairs)
    _check_model(provider, model)
    return await build(
        make_prompt(fields, argument),
        spec,
        tone=None,
        language=language,
        provider=provider,
        model=model,
        max_repairs=repairs,
    )


async def aimprove_template(
    template: Any,
    instruction: str,
    *,
    channel: str | None = None,
    engine: str | None = None,
    available_variables: list[str] | tuple[str, ...] | dict[str, Any] | None = None,
    category: str | None = None,
    provider: str | None = None,
    model: Any = None,
    max_repairs: int = DEFAULT_MAX_REPAIRS,
    max_sms_segments: int = DEFAULT_MAX_SMS_SEGMENTS,
) -> GeneratedTemplate:
    """``template`` (a GeneratedTemplate, a Step or a dict of fields) rewritten following
    ``instruction``, validated like a new one; by default it may read the variables it reads
    today."""
    instruction = check_prompt_text(instruction, "instruction")  # type: ignore[assignment]
    return await _rewrite(
        template,
        improve_prompt,
        instruction,
        channel=channel,
        engine=engine,
        available_variables=available_variables,
        category=category,
        language=None,
        provider=provider,
        model=model,
        max_repairs=max_repairs,
        max_sms_segments=max_sms_segments,
    )


async def atranslate_template(
    template: Any,
    language: str,
    *,
    channel: str | None = None,
    engine: str | None = None,
    available_variables: list[str] | tuple[str, ...] | dict[str, Any] | None = None,
    category: str | None = None,
    provider: str | None = None,
    model: Any = None,
    max_repairs: int = DEFAULT_MAX_REPAIRS,
    max_sms_segments: int = DEFAULT_MAX_SMS_SEGMENTS,
) -> GeneratedTemplate:
    """``template`` translated into ``language`` (tags, variables and markup kept), validated
    like a new one."""
    language = check_prompt_text(language, "language", limit=100)  # type: ignore[assignment]
    return await _rewrite(
        template,
        translate_prompt,
        language,
        channel=channel,
        engine=engine,
        available_variables=available_variables,
        category=category,
        language=language,
        provider=provider,
        model=model,
        max_repairs=max_repairs,
        max_sms_segments=max_sms_segments,
    )


def generate_template(*args: Any, **kwargs: Any) -> GeneratedTemplate:
    """Synchronous :func:`agenerate_template` (same arguments)."""
    return run_sync(lambda: agenerate_template(*args, **kwargs))


def improve_template(*args: Any, **kwargs: Any) -> GeneratedTemplate:
    """Synchronous :func:`aimprove_template` (same arguments)."""
    return run_sync(lambda: aimprove_template(*args, **kwargs))


def translate_template(*args: Any, **kwargs: Any) -> GeneratedTemplate:
    """Synchronous :func:`atranslate_template` (same arguments)."""
    return run_sync(lambda: atranslate_template(*args, **kwargs))
