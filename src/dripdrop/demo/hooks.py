"""Hook module of the demo sequence (``hook_module="dripdrop.demo.hooks"``)."""

from __future__ import annotations

from typing import Any


def handle_hook(name: str, enrollment: Any, context: dict[str, Any]) -> Any:
    """Answers from a pretend application database, keyed by the subscriber."""
    if name == "setup_completed":
        # Odd subscriber ids finished setup on day one; even ones did not.
        return int(enrollment.subscriber_id) % 2 == 1
    if name == "trial_days_remaining":
        return 14 - (context.get("days_since_signup") or 0)
    raise KeyError(f"unknown hook {name!r}")
