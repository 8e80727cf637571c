"""Module templates for the end-to-end tests (imported by the engine by name)."""

from __future__ import annotations

from typing import Any


def welcome(enrollment: Any, context: dict[str, Any]) -> dict[str, Any]:
    """An email's fields built in Python from the enrollment and the render context."""
    name = (enrollment.data or {}).get("name", "there")
    return {
        "subject": f"Welcome {name}",
        "body": f"<p>Hi {name}, step {context['step_key']} of {context['sequence_key']}</p>",
    }


async def welcome_async(enrollment: Any, context: dict[str, Any]) -> dict[str, Any]:
    """The same, as a coroutine."""
    return {"subject": f"Async hello {context['subscriber_id']}", "body": "async body"}


def not_a_dict(enrollment: Any, context: dict[str, Any]) -> str:
    return "oops"
