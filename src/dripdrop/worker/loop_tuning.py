"""Interpreter settings for the time a worker loop runs, restored when the last loop ends.

- **Fewer garbage collections.** A drain creates and drops millions of small objects (rows,
  jobs, outcomes), almost none of them in reference cycles, so reference counting frees them.
  With CPython's default thresholds the cyclic collector still runs a full pass over every live
  object of the process a few times a second: 13 % of a drain's time, measured. While a loop
  runs, collections happen about a tenth as often.
- **A shorter GIL switch interval.** The database calls run in threads; each time one gets its
  answer it must take the GIL back from the event loop, which is busy running the other lane's
  deliveries and gives the GIL up only every switch interval (5 ms by default). At 1 ms the
  lanes' database work waits less: a drain about 4 % faster, measured (the median of six
  alternating runs; five of the six were faster).

Settings are only ever made more permissive than the process had (thresholds raised, the
interval shortened), and loops may nest or run in several threads at once.

**The event loop.** The loops DripDrop starts itself (``run_due``, ``run_worker``,
``run_execution``, the sync facade's other async calls) are uvloop's when it is installed (a
dependency on Linux and macOS): a delivery's requests, timers and tasks cost about a tenth less
CPU on it (bench/dispatch.py part r). ``DRIPDROP_EVENT_LOOP=asyncio`` keeps the standard loop.
``AsyncDripDrop`` always runs on its host's loop.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from dripdrop.errors import ConfigurationError

T = TypeVar("T")

RELAXED = (10_000, 20, 100)
SWITCH_INTERVAL = 0.001

_lock = threading.Lock()
_active = 0
_saved: tuple[tuple[int, int, int], float] | None = None


@contextmanager
def loop_tuning() -> Iterator[None]:
    """Raise the collector's thresholds and shorten the switch interval for the block."""
    global _active, _saved
    with _lock:
        if _active == 0:
            thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
            _saved = (thresholds, interval)
            gc.set_threshold(*(max(a, b) for a, b in zip(thresholds, RELAXED, strict=True)))
            sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _saved is not None:
                gc.set_threshold(*_saved[0])
                sys.setswitchinterval(_saved[1])
                _saved = None


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """How DripDrop makes the event loops it runs itself: uvloop's when installed, unless
    ``DRIPDROP_EVENT_LOOP=asyncio`` asks for the standard one."""
    choice = os.environ.get("DRIPDROP_EVENT_LOOP", "").strip().lower()
    if choice not in ("", "uvloop", "asyncio"):
        raise ConfigurationError(
            f"DRIPDROP_EVENT_LOOP must be 'uvloop' or 'asyncio', not {choice!r}"
        )
    if choice == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigurationError(
                "DRIPDROP_EVENT_LOOP=uvloop, but uvloop is not installed"
            ) from None
        return asyncio.new_event_loop
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)`` on a loop from :func:`loop_factory`."""
    try:
        factory = loop_factory()
    except Exception:
        coro.close()  # never awaited: say nothing of it
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)
