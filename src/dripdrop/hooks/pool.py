"""A bounded pool of daemon threads for user code that may block (sync Python hooks and module
templates).

It is apart from the threads that reach the database, so hooks that hang can never keep the
worker from recording what it did; and its threads are daemons, never joined, so a hook that
never returns cannot keep ``run_due()`` or the process from ending. A call that outlives its
timeout is abandoned (its thread stays busy until the hook returns): with every thread hung,
further calls wait their timeout in the queue and fail like a slow hook — the worker goes on.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

DEFAULT_SIZE = 8


class BlockingPool:
    def __init__(self, size: int = DEFAULT_SIZE, name: str = "dripdrop-hook") -> None:
        self.size = max(1, size)
        self.name = name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]]
        self._queue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((future, fn, args))
        with self._lock:
            if len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    async def run(self, timeout: float, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on a pool thread; TimeoutError after ``timeout`` seconds, counting
        the wait for a free thread (a call not started by then never starts)."""
        future = self.submit(fn, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        finally:
            future.cancel()  # no-op once running; drops it from the queue otherwise

    def _work(self) -> None:
        while True:
            future, fn, args = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
