"""timing.deadline behaves like asyncio.timeout, on both event loops DripDrop runs on."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from dripdrop.timing import deadline as deadline_module
from dripdrop.timing.deadline import deadline
from dripdrop.worker.loop_tuning import loop_factory

LOOPS = ["asyncio", "uvloop"]


def run(kind: str, main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    factory = asyncio.new_event_loop if kind == "asyncio" else uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())


@pytest.mark.parametrize("kind", LOOPS)
def test_an_expired_bound_raises_timeout_error_on_time(kind: str) -> None:
    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with deadline(0.05):
                await asyncio.sleep(5)
        return time.monotonic() - started

    took = run(kind, main)
    assert 0.045 <= took < 0.5


@pytest.mark.parametrize("kind", LOOPS)
def test_a_bound_left_in_time_changes_nothing_and_leaves_no_entry(kind: str) -> None:
    async def main() -> int:
        for _ in range(100):
            async with deadline(0.05):
                await asyncio.sleep(0)
        await asyncio.sleep(0.1)  # past every bound: nothing may fire into a later await
        table = deadline_module._tables[asyncio.get_running_loop()]
        return len(table.bounds)

    assert run(kind, main) == 0


@pytest.mark.parametrize("kind", LOOPS)
@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [(5, 0.02, "inner"), (0.03, 5, "outer")],
    ids=["the inner one expires first", "an outer one shorter than the inner one wins"],
)
def test_of_nested_bounds_the_shorter_expires(
    kind: str, outer: float, inner: float, expected: str
) -> None:
    async def main() -> str:
        try:
            async with deadline(outer):
                try:
                    async with deadline(inner):
                        await asyncio.sleep(5)
                except TimeoutError:
                    return "inner"
        except TimeoutError:
            return "outer"
        return "none"

    assert run(kind, main) == expected


@pytest.mark.parametrize("kind", LOOPS)
def test_a_cancel_from_outside_stays_a_cancel(kind: str) -> None:
    async def main() -> str:
        async def victim() -> None:
            async with deadline(5):
                await asyncio.sleep(5)

        task = asyncio.create_task(victim())
        await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "finished"

    assert run(kind, main) == "cancelled"


@pytest.mark.parametrize("kind", LOOPS)
def test_many_bounds_of_different_lengths_each_expire_at_their_own_time(kind: str) -> None:
    async def main() -> list[tuple[float, float]]:
        async def one(seconds: float) -> tuple[float, float]:
            started = time.monotonic()
            try:
                async with deadline(seconds):
                    await asyncio.sleep(5)
            except TimeoutError:
                return seconds, time.monotonic() - started
            return seconds, -1.0

        # Longer bounds entered first: each shorter one must move the shared timer earlier.
        lengths = [0.3, 0.2, 0.1, 0.05, 0.25, 0.15]
        return await asyncio.gather(*(one(s) for s in lengths))

    for seconds, took in run(kind, main):
        assert seconds - 0.005 <= took < seconds + 0.2, (seconds, took)


@pytest.mark.parametrize("kind", LOOPS)
def test_none_never_expires(kind: str) -> None:
    async def main() -> str:
        async with deadline(None):
            await asyncio.sleep(0.05)
        return "done"

    assert run(kind, main) == "done"


def test_loops_in_two_threads_keep_their_own_timers() -> None:
    results: list[str] = []

    def worker(seconds: float) -> None:
        async def main() -> None:
            try:
                async with deadline(seconds):
                    await asyncio.sleep(1)
                results.append("late")
            except TimeoutError:
                results.append("timeout")

        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(main())

    threads = [threading.Thread(target=worker, args=(s,)) for s in (0.05, 0.1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == ["timeout", "timeout"]


def test_a_bound_is_entered_once() -> None:
    async def main() -> None:
        bound = deadline(1)
        async with bound:
            pass
        with pytest.raises(RuntimeError):
            async with bound:
                pass

    asyncio.run(main())
