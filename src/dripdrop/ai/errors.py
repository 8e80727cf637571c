"""The errors of the AI template builder (part of the DripDropError tree)."""

from __future__ import annotations

from dripdrop.errors import ConfigurationError, DripDropError


class AIUnavailable(ConfigurationError):
    """The builder cannot run here: the ``ai`` extra is not installed, or no provider key
    (ANTHROPIC_API_KEY / OPENAI_API_KEY) is set for the provider asked for."""


class AIProviderError(DripDropError):
    """The model provider failed (network, authentication, rate limit) or answered with
    something that is not a template at all."""


class TemplateGenerationError(DripDropError):
    """The model did not produce a valid template within the repair limit. ``problems`` are the
    validation messages of its last answer; ``attempts`` how many answers it gave."""

    def __init__(self, problems: list[str], attempts: int) -> None:
        self.problems = list(problems)
        self.attempts = attempts
        listed = "; ".join(self.problems) or "no valid answer"
        super().__init__(
            f"the model did not produce a valid template in {attempts} attempt(s); "
            f"last problems: {listed}"
        )
