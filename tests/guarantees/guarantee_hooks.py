"""Hooks for the guarantee tests (hook_module="guarantee_hooks")."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from guarantee_support import RELEASE


def handle_hook(name: str, enrollment: Any, context: dict[str, Any]) -> Any:
    if name == "hangs":  # a blocking call that never comes back on its own
        RELEASE.wait(60)
        return True
    if name == "nul":
        return "x\x00y"
    raise KeyError(name)


class Waiting:
    """An async hook that waits until the test releases it (the delivery is then in flight)."""

    async def handle_hook(self, name: str, enrollment: Any, context: dict[str, Any]) -> Any:
        deadline = time.monotonic() + 30
        while not RELEASE.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return "go"
