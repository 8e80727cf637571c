"""The builder: one pydantic-ai Agent run per template, with the validator in the loop.

The Agent's output type is the channel's fields (a pydantic model, so the model answers with
structured data). Its output validator runs :func:`validate_fields`; problems go back to the
model as a ``ModelRetry`` — pydantic-ai's own repair mechanism — at most ``max_repairs`` times.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from dripdrop.ai.errors import AIProviderError, TemplateGenerationError
from dripdrop.ai.models import resolve_model
from dripdrop.ai.prompts import instructions
from dripdrop.ai.validate import Spec, Verdict, validate_fields
from dripdrop.records import GeneratedTemplate, SmsSegments, TokenUsage

T = TypeVar("T")


class EmailDraft(BaseModel):
    """An email template."""

    subject: str = Field(description="the subject line (a template)")
    preheader: str = Field(description="the inbox preview line (a template)")
    body: str = Field(description="the email body: HTML, or an MJML document for engine mjml")
    text: str = Field(description="the plain-text alternative of the body")


class SmsDraft(BaseModel):
    """An SMS template."""

    body: str = Field(description="the SMS text (a template, no markup)")


class ChatDraft(BaseModel):
    """A chat message template (Slack, Telegram, Discord, Teams)."""

    text: str = Field(description="the message text (a template)")


def draft_type(channel: str) -> type[BaseModel]:
    if channel == "email":
        return EmailDraft
    return SmsDraft if channel == "sms" else ChatDraft


@dataclass
class _Run:
    """One run's state, handed to the validator as the Agent's deps."""

    spec: Spec
    problems: list[str] = field(default_factory=list)
    repairs: int = 0
    verdict: Verdict | None = None


async def build(
    prompt: str,
    spec: Spec,
    *,
    tone: str | None,
    language: str | None,
    provider: str | None,
    model: Any,
    max_repairs: int,
) -> GeneratedTemplate:
    """Ask the model for a template and return it once it validates (see module docstring)."""
    from pydantic_ai import Agent, ModelRetry, RunContext
    from pydantic_ai.exceptions import AgentRunError, UnexpectedModelBehavior

    chosen = resolve_model(provider, model)
    state = _Run(spec)
    agent: Agent[_Run, Any] = Agent(
        chosen,
        output_type=draft_type(spec.channel),
        instructions=instructions(spec, tone, language),
        deps_type=_Run,
        retries={"output": max_repairs},
        name="dripdrop-template-builder",
    )

    @agent.output_validator
    def check(ctx: RunContext[_Run], draft: Any) -> Any:
        verdict = validate_fields(draft.model_dump(), ctx.deps.spec)
        if verdict.problems:
            ctx.deps.problems = verdict.problems
            raise ModelRetry(
                "The template is not valid. Fix these problems and answer again with the whole "
                "template:\n- " + "\n- ".join(verdict.problems)
            )
        ctx.deps.repairs = ctx.retry  # answers sent back before this one
        ctx.deps.verdict = verdict
        return draft

    try:
        result = await agent.run(prompt, deps=state)
    except UnexpectedModelBehavior as exc:
        if state.problems:
            raise TemplateGenerationError(state.problems, max_repairs + 1) from exc
        raise AIProviderError(f"the model did not answer with a template: {exc}") from exc
    except AgentRunError as exc:  # HTTP, authentication, rate limits, timeouts
        raise AIProviderError(f"the model provider failed: {type(exc).__name__}: {exc}") from exc
    verdict = state.verdict
    assert verdict is not None  # the validator accepted the output
    usage = result.usage
    return GeneratedTemplate(
        channel=spec.channel,
        engine=spec.engine,
        **result.output.model_dump(),
        variables=verdict.variables,
        repairs=state.repairs,
        usage=TokenUsage(
            requests=usage.requests,
            input_tokens=usage.input_tokens or 0,
            output_tokens=usage.output_tokens or 0,
        ),
        sms=verdict.sms,
        model=getattr(chosen, "model_name", None),
    )


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine from synchronous code, also when the thread already runs an event loop
    (a notebook, a sync call inside an async host): then on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())  # type: ignore[arg-type]
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()  # type: ignore[arg-type]


__all__ = ["ChatDraft", "EmailDraft", "SmsDraft", "SmsSegments", "build", "draft_type", "run_sync"]
