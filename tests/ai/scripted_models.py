"""Scripted pydantic-ai models for the builder's tests: each answers with the next of a list of
templates, through the output tool the Agent offers (what a real model's structured answer is),
and records what it was sent. Offline: no test touches the network."""

from __future__ import annotations

from typing import Any

from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel


class Script:
    """A FunctionModel answering ``answers`` in turn (the last one again when they run out)."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.requests: list[list[ModelMessage]] = []
        self.instructions: list[str | None] = []
        self.model = FunctionModel(self._answer, model_name="scripted")

    def _answer(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.requests.append(messages)
        self.instructions.append(info.instructions)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, answer)])

    def feedback(self, index: int) -> str:
        """The text sent to the model with request ``index`` (0 is the first request)."""
        parts = self.requests[index][-1].parts
        return "\n".join(str(getattr(part, "content", "")) for part in parts)

    def prompt(self) -> str:
        """Everything the model was told in its first request."""
        return "\n".join(
            str(getattr(part, "content", "")) for m in self.requests[0] for part in m.parts
        )


WELCOME = {
    "subject": "Welcome, {{ name }}!",
    "preheader": "{{ trial_days_remaining }} days of trial left",
    "body": "<p>Hi {{ name }}, you have {{ trial_days_remaining }} days left.</p>",
    "text": "Hi {{ name }}, you have {{ trial_days_remaining }} days left.",
}
BROKEN = {**WELCOME, "subject": "Welcome, {{ name !"}


def repairing() -> FunctionModel:
    """For the CLI (``--model-object scripted_models:repairing``): broken, then valid."""
    return Script(BROKEN, WELCOME).model


def never_valid() -> FunctionModel:
    """For the CLI: a template that reads a variable nobody offered, every time."""
    return Script({**WELCOME, "body": "<p>{{ secret_plan }}</p>"}).model
