"""Hooks of test_suppression_fence.py (hook_module="suppression_fence_hooks:Waiting")."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

#: Set by the test to let the waiting deliveries go on to the fence.
RELEASE = threading.Event()
#: Set by the hook once a delivery is waiting in it (claimed, rendering).
WAITING = threading.Event()


class Waiting:
    """An async hook that holds its delivery until the test releases it."""

    async def handle_hook(self, name: str, enrollment: Any, context: dict[str, Any]) -> Any:
        WAITING.set()
        deadline = time.monotonic() + 30
        while not RELEASE.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return "go"
