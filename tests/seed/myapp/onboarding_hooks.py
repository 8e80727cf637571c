"""Example 1's ``hook_module: "MyApp.OnboardingHooks"``: answers from a pretend app database."""

from __future__ import annotations

from typing import Any

# subscriber id → (setup completed?, setup progress in %)
USERS: dict[str, tuple[bool, int]] = {}


def handle_hook(name: str, enrollment: Any, context: dict[str, Any]) -> Any:
    """The seed's ``handle_hook(name, enrollment, context)``, answering ``{:ok, value}``."""
    completed, progress = USERS[enrollment.subscriber_id]
    if name == "setup_completed":
        return ("ok", completed)
    if name == "progress":
        return ("ok", progress)
    raise KeyError(name)  # not a hook of this module
