"""The seed's Hook System example, ``MyApp.DripDropHooks``, in Python."""

from __future__ import annotations

from datetime import date
from typing import Any

# subscriber id → (trial ends on, enabled feature count)
USERS: dict[str, tuple[date, int]] = {}
TODAY = date(2030, 1, 2)


def handle_hook(name: str, enrollment: Any, context: dict[str, Any]) -> Any:
    """``handle_hook(:trial_days_remaining, …)`` and ``handle_hook(:feature_count, …)``."""
    trial_ends_at, feature_count = USERS[enrollment.subscriber_id]
    if name == "trial_days_remaining":
        return ("ok", max((trial_ends_at - TODAY).days, 0))
    if name == "feature_count":
        return ("ok", feature_count)
    raise KeyError(name)
