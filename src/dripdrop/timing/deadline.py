"""``deadline(seconds)``: ``asyncio.timeout`` for the delivery path, with one timer per event loop.

Every delivery runs under two time bounds (the execution's, ``engine/process.py:
run_job_within``, and its request's, ``net/client.py: guarded_request``). ``asyncio.timeout``
arms and cancels an event-loop timer for each: at thousands of deliveries a second that was
8 % of the worker's CPU (bench/dispatch.py part r, uvloop). Here the bounds of a loop share one
timer, set for the earliest of them: entering a bound adds it to the loop's table (and moves the
timer only when it is the new earliest), leaving removes it. When the timer fires, the expired
bounds cancel their tasks and the timer is set for the next earliest.

Same behaviour as ``asyncio.timeout``: an expired bound cancels its task, and its ``async with``
raises ``TimeoutError`` (chained from the ``CancelledError``) unless the task was also cancelled
by someone else; ``None`` (or no bound) never expires. Bounds may nest.
"""

from __future__ import annotations

import asyncio
import weakref
from types import TracebackType
from typing import Any

__all__ = ["deadline"]


class _Table:
    """The bounds of one event loop and its one timer."""

    __slots__ = ("bounds", "handle", "loop", "wake_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = weakref.ref(loop)  # the table lives in a weak map keyed by its loop
        self.bounds: dict[_Deadline, None] = {}  # insertion-ordered set
        self.handle: asyncio.TimerHandle | None = None
        self.wake_at = float("inf")

    def add(self, bound: _Deadline) -> None:
        self.bounds[bound] = None
        if bound.when < self.wake_at:
            self._arm(bound.when)

    def _arm(self, when: float) -> None:
        loop = self.loop()
        if self.handle is not None:
            self.handle.cancel()
        self.wake_at = when
        self.handle = None if loop is None else loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self.handle, self.wake_at = None, float("inf")
        loop = self.loop()
        if loop is None:
            return
        # Loops fire timers up to their clock's resolution early (uvloop's is a millisecond):
        # a bound that close to its time is due, rather than the timer being set again at once.
        now = loop.time() + _RESOLUTION
        earliest = float("inf")
        for bound in list(self.bounds):
            if bound.when <= now:
                del self.bounds[bound]
                bound.expire()
            elif bound.when < earliest:
                earliest = bound.when
        if earliest != float("inf"):
            self._arm(earliest)


_tables: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Table] = (
    weakref.WeakKeyDictionary()
)

_ENTERED, _EXPIRING, _LEFT = 1, 2, 3
_RESOLUTION = 0.001


class _Deadline:
    __slots__ = ("_cancelling", "_state", "_table", "_task", "when")

    def __init__(self, seconds: float | None) -> None:
        self.when = seconds
        self._state = 0
        self._task: asyncio.Task[Any] | None = None
        self._table: _Table | None = None
        self._cancelling = 0

    async def __aenter__(self) -> _Deadline:
        if self._state:
            raise RuntimeError("a deadline is entered once")
        self._state = _ENTERED
        if self.when is None:
            return self
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("deadline() must be used inside a task")
        loop = task.get_loop()
        self.when = loop.time() + max(0.0, self.when)
        self._task, self._cancelling = task, task.cancelling()
        table = _tables.get(loop)
        if table is None:
            table = _tables[loop] = _Table(loop)
        self._table = table
        table.add(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        table, self._table = self._table, None
        if table is not None:
            table.bounds.pop(self, None)
        expiring = self._state == _EXPIRING
        self._state = _LEFT
        task, self._task = self._task, None
        # Ours alone if no one else cancelled the task meanwhile (asyncio.Timeout's rule).
        if (
            expiring
            and task is not None
            and task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc

    def expire(self) -> None:
        if self._state == _ENTERED and self._task is not None:
            self._state = _EXPIRING
            self._task.cancel()


def deadline(seconds: float | None) -> _Deadline:
    """An ``async with`` bound of ``seconds`` on the current task (None: unbounded), like
    ``asyncio.timeout(seconds)``."""
    return _Deadline(seconds)
