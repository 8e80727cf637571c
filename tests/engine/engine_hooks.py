"""A hook module used by the engine tests (hook_module="engine_hooks" via sys.path)."""

from __future__ import annotations

import time
from typing import Any

CALLS: list[str] = []


def handle_hook(name: str, enrollment: Any, context: dict[str, Any]) -> Any:
    CALLS.append(name)
    if name == "setup_completed":
        return enrollment.data.get("done", False)
    if name == "trial_days_remaining":
        return 3
    if name == "explode":
        raise RuntimeError("the CRM is down")
    if name == "slow":
        time.sleep(2)
        return 1
    if name == "score":
        return 72
    raise KeyError(name)
