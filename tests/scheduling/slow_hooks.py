"""A hook module for the Celery tests (``hook_module="slow_hooks"``; the Celery worker processes
get this directory on PYTHONPATH): ``slow`` takes SLOW_HOOK_SECONDS before answering 1, so a test
can kill a worker while its executions are mid-task, before anything was delivered."""

from __future__ import annotations

import os
import time
from typing import Any


def handle_hook(name: str, enrollment: Any, context: dict[str, Any]) -> Any:
    if name == "slow":
        time.sleep(float(os.environ.get("SLOW_HOOK_SECONDS", "0")))
        return 1
    raise ValueError(f"unknown hook {name!r}")
