"""How a drain's ``concurrency`` bounds its executions: at most N **preparing** (conditions, hook
values, rendering, the fence) and at most N **sending** (a request at a provider).

An execution takes a preparing slot, and gives it up once it holds a sending slot. So while N
requests are out, the next N executions already have their hooks, rendering and fence behind
them, and each request that ends is followed at once by the next: the database round trip of
the fence is no longer inside the time a provider's slot is held. Hooks still run at most N at a
time, and providers never see more than N requests at once.

The fence runs before the sending slot is taken; when the wait for the slot took longer than
``FENCE_FRESH`` the claim is confirmed again inside it (``engine/process.py:
_fence_and_slot``), so a request never goes out on a confirmation older than that.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

#: The oldest a fence's confirmation may be when its request goes out (seconds, counted from
#: when the confirming query was sent). Waiting for a sending slot normally takes about one
#: request's time at a provider.
FENCE_FRESH = 0.02


class Gate:
    """A first-come, first-served semaphore: a freed slot goes straight to the oldest waiter.
    (``asyncio.Semaphore`` of Python 3.11 walks its waiters on every acquire; a drain queues a
    whole claim of executions on it, and that walk showed in profiles.)"""

    __slots__ = ("_free", "_waiters")

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot, then cancelled
                self.release()
            raise  # a cancelled waiter stays queued, done: release() passes over it

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot changes hands; _free stays as it is
                return
        self._free += 1


class Ticket:
    """One execution's hold on the slots: its preparing slot until it is sending.
    (Plain acquire/release pairs, not context managers: one of each per delivery showed in
    profiles.)"""

    __slots__ = ("_preparing", "_slots")

    def __init__(self, slots: Slots) -> None:
        self._slots = slots
        self._preparing: Gate | None = slots.preparing

    @staticmethod
    def stale(confirmed: float) -> bool:
        """Whether a fence confirmation sent at ``confirmed`` (monotonic) is too old to send on."""
        return time.monotonic() - confirmed > FENCE_FRESH

    def leave_preparing(self) -> None:
        if self._preparing is not None:
            self._preparing.release()
            self._preparing = None

    async def start_sending(self) -> None:
        """Take a sending slot for the request; the preparing slot goes to the next execution.
        Pair with ``stop_sending`` in a ``finally``."""
        await self._slots.sending.acquire()
        self.leave_preparing()

    def stop_sending(self) -> None:
        self._slots.sending.release()


class Slots:
    def __init__(self, concurrency: int) -> None:
        self.preparing = Gate(concurrency)
        self.sending = Gate(concurrency)

    async def ticket(self) -> Ticket:
        """A preparing slot for one execution, held until it sends or ends: the caller calls
        ``leave_preparing`` in a ``finally``."""
        await self.preparing.acquire()
        return Ticket(self)
