"""Hook targets used by test_engine_hooks: a class and an async module-level hook."""

from __future__ import annotations

import asyncio
from typing import Any


class CrmHooks:
    instances = 0

    def __init__(self) -> None:
        CrmHooks.instances += 1

    def handle_hook(self, name: str, enrollment: Any, context: dict[str, Any]) -> Any:
        if name == "tier":
            return ("ok", "gold")  # the seed's {:ok, value} style is accepted
        if name == "broken":
            return ("error", "no such customer")
        raise KeyError(name)


async def handle_hook(name: str, enrollment: Any, context: dict[str, Any]) -> Any:
    if name == "slow":
        await asyncio.sleep(5)
    if name == "greeting":
        return f"Hello {context['name']} ({context['step_key']})"
    raise LookupError(name)
