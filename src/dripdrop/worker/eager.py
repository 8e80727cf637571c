"""Which executions of a batch run inline: those that only touch in-process providers run one
after the other in the lane's task (they finish without waiting, so a Task each would only cost
time); the rest run concurrently as Tasks (worker/runner.py), so one slow provider never holds
the others back."""

from __future__ import annotations

from dripdrop.channels.registry import get_spec
from dripdrop.engine.process import Job
from dripdrop.engine.routing import candidates
from dripdrop.errors import DripDropError


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
