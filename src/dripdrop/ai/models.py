"""Choosing the model: a pydantic-ai Model object as given, or Anthropic / OpenAI by name with the
key from the environment. Nothing is read until a template is asked for."""

from __future__ import annotations

import os
from typing import Any

from dripdrop.ai.errors import AIUnavailable

#: provider → (environment variable holding its key, default model name)
PROVIDERS: dict[str, tuple[str, str]] = {
    "anthropic": ("ANTHROPIC_API_KEY", "claude-sonnet-4-6"),
    "openai": ("OPENAI_API_KEY", "gpt-6.1-terra"),
}
#: Overrides of the defaults, for a whole deployment.
PROVIDER_ENV = "DRIPDROP_AI_PROVIDER"
MODEL_ENV = "DRIPDROP_AI_MODEL"
EXTRA_HINT = "pip install 'dripdrop-engine[ai]'"


def installed() -> bool:
    """Is the ``ai`` extra (pydantic-ai-slim) importable?"""
    try:
        import pydantic_ai  # noqa: F401
    except ImportError:
        return False
    return True


def configured_provider() -> str | None:
    """The provider used when none is named: DRIPDROP_AI_PROVIDER, else the first whose key is
    set (Anthropic, then OpenAI), else None."""
    chosen = os.environ.get(PROVIDER_ENV)
    if chosen:
        return chosen
    return next((name for name, (env, _) in PROVIDERS.items() if os.environ.get(env)), None)


def unavailable_reason(provider: str | None = None) -> str | None:
    """Why the builder cannot run with ``provider`` (None: the configured one), or None."""
    if not installed():
        return f"the AI template builder needs the 'ai' extra: {EXTRA_HINT}"
    name = provider or configured_provider()
    if name is None:
        keys = " or ".join(env for env, _ in PROVIDERS.values())
        return f"no AI provider is configured: set {keys}"
    if name not in PROVIDERS:
        return f"unknown AI provider {name!r}; choose one of {', '.join(PROVIDERS)}"
    env = PROVIDERS[name][0]
    if not os.environ.get(env):
        return f"{env} is not set: the {name} provider needs an API key"
    return None


def is_model_object(model: Any) -> bool:
    """True for a pydantic-ai Model instance (FunctionModel, TestModel, a configured model)."""
    if not installed():
        return False
    from pydantic_ai.models import Model

    return isinstance(model, Model)


def resolve_model(provider: str | None, model: Any) -> Any:
    """The pydantic-ai Model to run: ``model`` itself when it is one, else ``provider``'s model
    named ``model`` (default: DRIPDROP_AI_MODEL, else the provider's default)."""
    if not installed():
        raise AIUnavailable(f"the AI template builder needs the 'ai' extra: {EXTRA_HINT}")
    if is_model_object(model):
        return model
    reason = unavailable_reason(provider)
    if reason is not None:
        raise AIUnavailable(reason)
    name = provider or configured_provider()
    assert name is not None  # unavailable_reason checked it
    env, default = PROVIDERS[name]
    model_name = model or os.environ.get(MODEL_ENV) or default
    key = os.environ[env]
    if name == "anthropic":
        from pydantic_ai.models.anthropic import AnthropicModel
        from pydantic_ai.providers.anthropic import AnthropicProvider

        return AnthropicModel(model_name, provider=AnthropicProvider(api_key=key))
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    return OpenAIChatModel(model_name, provider=OpenAIProvider(api_key=key))
