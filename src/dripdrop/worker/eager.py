"""Running a batch's executions: those that only touch in-process providers run one after the
other in the current task (they finish without waiting, so a Task each would only cost time);
the rest run concurrently as Tasks, so one slow provider never holds the others back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from dripdrop.channels.registry import get_spec
from dripdrop.engine.process import Job
from dripdrop.engine.routing import candidates
from dripdrop.errors import DripDropError

T = TypeVar("T")


def runs_in_process(job: Job) -> bool:
    """True when nothing in this execution can wait on the network: no hooks, no external
    template, and every adapter it may use is an in-process provider (memory, console…)."""
    step = job.step
    if step is None:
        return True  # skipped at once
    return step.derived("in_process", job.version, job.adapters, lambda: _runs_in_process(job))


def _runs_in_process(job: Job) -> bool:
    step = job.step
    assert step is not None
    if step.template_type == "external":
        return False
    version = job.version
    if version.has_hooks:
        return False
    options = candidates(step, version, job.adapters)
    if not options:
        return True  # fails at once: no adapter
    for adapter_id, _ in options:
        adapter = job.adapters.by_id[adapter_id]
        try:
            if not get_spec(adapter.channel, adapter.provider).in_process:
                return False
        except DripDropError:  # an unknown provider fails in run_job, with its message
            return False
    return True


async def run_batch_jobs(
    jobs: Sequence[Job],
    run: Callable[[Job], Awaitable[T]],
    run_inline: Callable[[Job], Awaitable[T]] | None = None,
) -> list[T]:
    """Results in the order of ``jobs``; the first exception propagates (like gather).
    ``run_inline`` runs the in-process ones (default ``run``): they need no concurrency limit."""
    inline_run = run_inline or run
    results: list[Any] = [None] * len(jobs)
    tasks: list[tuple[int, asyncio.Future[T]]] = []
    inline: list[int] = []
    for i, job in enumerate(jobs):
        if runs_in_process(job):
            inline.append(i)
        else:
            tasks.append((i, asyncio.ensure_future(run(job))))
    try:
        for i in inline:
            results[i] = await inline_run(jobs[i])
        if tasks:
            for (i, _), value in zip(
                tasks, await asyncio.gather(*(t for _, t in tasks)), strict=True
            ):
                results[i] = value
    except BaseException:
        for _, task in tasks:
            task.cancel()
        raise
    return results
