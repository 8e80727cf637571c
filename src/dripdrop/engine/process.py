"""Running one due execution: conditions, rendering, adapter choice, delivery, and the outcome.

This decides *what happens* to an execution; the worker decides who runs it and records the
outcome. It never writes to the database itself.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dripdrop.channels.base import DeliveryResult, Message
from dripdrop.channels.registry import get_provider
from dripdrop.engine.conditions import compare, lookup, next_window_opening
from dripdrop.engine.context import HookValues, base_context, id_text
from dripdrop.engine.defs import AdapterSet, StepDef, VersionDef
from dripdrop.engine.recipients import resolve_recipient
from dripdrop.engine.routing import choose_adapter, no_adapter_reason
from dripdrop.engine.templating import render_fields
from dripdrop.errors import DeliveryError, DripDropError, PermanentError, TransientError

MAX_BACKOFF = 6 * 3600.0


@dataclass
class Job:
    """A claimed execution and what is needed to run it."""

    execution: Any
    token: uuid.UUID
    enrollment: Any
    version: VersionDef
    step: StepDef | None
    adapters: AdapterSet
    event_counts: dict[str, int] = field(default_factory=dict)
    now: datetime | None = None  # the claim's time: what the execution runs and is recorded at


@dataclass
class Outcome:
    """What happened; ``kind`` is sent|skipped|failed|retried|deferred|held|cancelled, or
    ``fenced`` (stopped before delivery: the claim was lost or the enrollment paused or ended
    since) or ``released`` (not run to an end: given back, nothing is recorded)."""

    job: Job
    kind: str
    state: str
    scheduled_for: datetime | None = None
    retry_count: int = 0
    recipient: str | None = None
    payload: Any = None
    response: Any = None
    error_message: str | None = None
    adapter_id: uuid.UUID | None = None
    executed_at: datetime | None = None
    failed_at: datetime | None = None
    held: bool = False

    @property
    def advances(self) -> bool:
        """Does the enrollment move to its next step? (Replays never move it.)"""
        if self.job.execution.replay_of is not None:
            return False
        if self.kind in ("sent", "skipped"):
            return True
        return (
            self.kind == "failed"
            and self.job.step is not None
            and (self.job.step.config.get("on_failure", "continue") != "halt")
        )

    @property
    def halts(self) -> bool:
        return (
            self.kind == "failed"
            and self.job.execution.replay_of is None
            and self.job.step is not None
            and self.job.step.config.get("on_failure") == "halt"
        )


def backoff(retry: int, base: float, rng: random.Random) -> float:
    """Exponential backoff with ±25 % jitter: base, 2·base, 4·base … capped at 6 h."""
    return min(base * 2**retry, MAX_BACKOFF) * rng.uniform(0.75, 1.25)


async def _conditions(job: Job, hooks: HookValues, now: datetime) -> tuple[str, Any] | None:
    """None when every condition holds; else ("skip", reason) or ("defer", when)."""
    step = job.step
    assert step is not None
    data = job.enrollment.data or {}
    # Time windows first: outside one the step waits, whatever the other conditions say.
    for c in step.conditions:
        if c.condition_type == "time_window":
            opening = next_window_opening(c.config or {}, data, now)
            if opening is not None:
                return ("defer", opening)
    for c in step.conditions:
        kind = c.condition_type
        if kind == "time_window":
            continue
        if kind == "enrollment_data":
            actual, what = lookup(data, c.field_path), f"data {c.field_path!r}"
        elif kind == "event":
            key = (c.config or {}).get("event_key")
            actual, what = job.event_counts.get(key, 0), f"count of event {key!r}"
        elif kind == "hook":
            if c.http_hook_id:
                hook = next(
                    (h for h in job.version.http_hooks.values() if h.id == c.http_hook_id), None
                )
                if hook is None:
                    raise PermanentError(f"HTTP hook {c.http_hook_id} is missing or inactive")
                actual, what = await hooks.get(hook.key), f"HTTP hook {hook.key!r}"
            else:
                actual, what = await hooks.get(c.hook_function), f"hook {c.hook_function!r}"
        else:
            raise PermanentError(f"unknown condition type {kind!r}")
        if not compare(actual, c.operator, c.expected_value):
            return (
                "skip",
                f"condition not met: {what} is {actual!r}, "
                f"expected {c.operator} {c.expected_value!r}",
            )
    return None


def held_outcome(job: Job, kind: str = "held") -> Outcome:
    """The execution waits as it is (paused enrollment, or stopped by the fence)."""
    ex = job.execution
    return Outcome(
        job,
        kind,
        "scheduled",
        scheduled_for=ex.scheduled_for,
        retry_count=ex.retry_count,
        held=True,
        adapter_id=ex.adapter_id,
    )


def released_outcome(job: Job) -> Outcome:
    """Nothing to record: the claim is given back and runs again (same idempotency key)."""
    return Outcome(job, "released", "scheduled", retry_count=job.execution.retry_count)


async def run_job_within(job: Job, services: Any, now: datetime, seconds: float) -> Outcome:
    """``run_job`` for an execution that may wait (hooks, network), fenced before its delivery
    and bounded in time: one that takes longer than ``seconds`` is retried later, like a
    timeout, so it can never hold its lane (and its lease) forever."""
    try:
        async with asyncio.timeout(seconds):
            return await run_job(job, services, now, fence=True)
    except TimeoutError:
        return _retry_or_fail(
            job,
            now,
            TransientError(f"the execution took longer than {seconds:g} s"),
            services,
            None,
            None,
            job.execution.adapter_id,
        )


async def run_job(job: Job, services: Any, now: datetime, *, fence: bool = False) -> Outcome:
    """Run one execution to an outcome. Never raises: every failure becomes an outcome.
    With ``fence``, the claim is confirmed just before the provider gets the message."""
    ex, step = job.execution, job.step
    if job.enrollment.state == "paused":
        return held_outcome(job)
    # A replay is an explicit request: it runs even if the enrollment has since ended.
    if job.enrollment.state != "active" and ex.replay_of is None:
        return Outcome(
            job,
            "cancelled",
            "cancelled",
            retry_count=ex.retry_count,
            error_message=f"cancelled: enrollment is {job.enrollment.state}",
        )
    if step is None or not step.active:
        return Outcome(
            job,
            "skipped",
            "skipped",
            executed_at=now,
            retry_count=ex.retry_count,
            error_message="skipped: the step was removed or deactivated",
        )
    if ex.waiting_for is not None:
        return Outcome(
            job,
            "skipped",
            "skipped",
            executed_at=now,
            retry_count=ex.retry_count,
            error_message=f"skipped: timed out waiting for event {ex.waiting_for!r}",
        )
    base = base_context(job.version, step, job.enrollment)
    hooks = HookValues(services, job.version, job.enrollment, base)
    adapter_id: uuid.UUID | None = ex.adapter_id
    payload: Any = None
    recipient = None
    try:
        verdict = await _conditions(job, hooks, now)
        if verdict and verdict[0] == "defer":
            return Outcome(
                job,
                "deferred",
                "scheduled",
                scheduled_for=verdict[1],
                retry_count=ex.retry_count,
                adapter_id=ex.adapter_id,
                error_message=f"deferred to {verdict[1].isoformat()} (time window)",
            )
        if verdict:
            return Outcome(
                job,
                "skipped",
                "skipped",
                executed_at=now,
                retry_count=ex.retry_count,
                error_message=verdict[1],
                payload={"hook_values": hooks.values} if hooks.values else None,
            )
        fields = await render_fields(step, base, hooks, services)
        payload = dict(fields)
        if hooks.values:
            payload["hook_values"] = dict(hooks.values)
        recipient = resolve_recipient(step.channel, fields, job.enrollment.data or {})
        adapter_id = choose_adapter(
            step,
            job.version,
            job.adapters,
            enrollment_id=job.enrollment.id,
            previous_adapter_id=ex.adapter_id,
            failover=ex.retry_count > 0,
        )
        if adapter_id is None:
            raise PermanentError(no_adapter_reason(step, job.version, job.adapters)[1])
        adapter = job.adapters.by_id[adapter_id]
        broken = job.adapters.broken.get(adapter_id)
        if broken is not None:  # only the executions routed to it fail (and fail over)
            raise TransientError(f"channel adapter {adapter.name!r}: {broken}")
        message = Message(
            channel=step.channel,
            recipient=recipient,
            fields=fields,
            execution_id=id_text(ex),
            idempotency_key=ex.idempotency_key,
            metadata={
                "enrollment_id": id_text(job.enrollment),
                "step_key": step.key,
                "sequence_key": job.version.sequence_key,
            },
        )
        if services.dry_run:  # simulations render and route but never send
            result = DeliveryResult(status="simulated")
        else:
            if fence and services.fence is not None:
                verdict = await services.fence.check(job)
                if verdict is not None:
                    return verdict
            result = await deliver(message, adapter, services.delivery_context)
        response = {
            "provider": adapter.provider,
            "adapter": adapter.name,
            "provider_message_id": result.provider_message_id,
            "status": result.status,
            "body": result.response,
        }
        return Outcome(
            job,
            "sent",
            "sent",
            executed_at=now,
            retry_count=ex.retry_count,
            recipient=recipient,
            payload=payload,
            response=response,
            adapter_id=adapter_id,
        )
    except TransientError as exc:
        return _retry_or_fail(job, now, exc, services, recipient, payload, adapter_id)
    except DripDropError as exc:
        return _failed(job, now, exc, recipient, payload, adapter_id)
    except Exception as exc:  # a bug or a user's code: record it, never crash the worker
        return _failed(
            job,
            now,
            exc,
            recipient,
            payload,
            adapter_id,
            prefix=f"unexpected {type(exc).__name__}: ",
        )


# Built-in providers scrub what they return and raise (channels.http.send, Secrets.of); a
# provider an app registers may not, so its answers and errors are scrubbed here.
_BUILT_IN = "dripdrop.channels.providers."


async def deliver(message: Message, adapter: Any, ctx: Any) -> DeliveryResult:
    """One send through the adapter's provider; what an app's own provider answers or raises
    comes back with the adapter's secrets scrubbed, in every form (Secrets)."""
    provider = get_provider(adapter.channel, adapter.provider)
    if type(provider).__module__.startswith(_BUILT_IN):
        return await provider.send(message, adapter, ctx)
    from dripdrop.channels.secrets import Secrets

    secrets = Secrets.of(adapter)
    try:
        result = await provider.send(message, adapter, ctx)
    except DeliveryError as exc:
        raise secrets.scrub_error(exc) from None
    except Exception as exc:  # user code: its text may quote a credential
        text = secrets.scrub(str(exc))
        raise PermanentError(f"unexpected {type(exc).__name__}: {text}") from None
    if not secrets:
        return result
    return DeliveryResult(
        provider_message_id=secrets.scrub(result.provider_message_id),
        status=result.status,
        response=secrets.scrub(result.response),
    )


def _retry_or_fail(
    job: Job,
    now: datetime,
    exc: TransientError,
    services: Any,
    recipient: Any,
    payload: Any,
    adapter_id: Any,
) -> Outcome:
    ex, step = job.execution, job.step
    max_retries = step.config.get("max_retries", 3) if step is not None else 0
    if ex.retry_count < max_retries:
        delay = (
            max(exc.retry_after, 1.0)
            if exc.retry_after
            else backoff(ex.retry_count, services.retry_base, services.rng)
        )
        return Outcome(
            job,
            "retried",
            "scheduled",
            scheduled_for=now + timedelta(seconds=delay),
            retry_count=ex.retry_count + 1,
            recipient=recipient,
            payload=payload,
            response=_answer(exc),
            adapter_id=adapter_id,
            error_message=f"attempt {ex.retry_count + 1} failed, retrying: {exc}",
        )
    return _failed(
        job,
        now,
        exc,
        recipient,
        payload,
        adapter_id,
        prefix=f"failed after {ex.retry_count + 1} attempts: ",
    )


def _answer(exc: Exception) -> Any:
    response = getattr(exc, "response", None)
    status = getattr(exc, "status", None)
    if response is None and status is None:
        return None
    return {"status": status, "body": response}


def _failed(
    job: Job,
    now: datetime,
    exc: Exception,
    recipient: Any,
    payload: Any,
    adapter_id: Any,
    prefix: str = "",
) -> Outcome:
    return Outcome(
        job,
        "failed",
        "failed",
        failed_at=now,
        executed_at=now,
        retry_count=job.execution.retry_count,
        recipient=recipient,
        payload=payload,
        response=_answer(exc),
        adapter_id=adapter_id,
        error_message=f"{prefix}{exc}" or type(exc).__name__,
    )
