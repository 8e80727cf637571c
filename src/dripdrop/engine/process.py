"""Running one due execution: conditions, rendering, adapter choice, delivery, and the outcome.

This decides *what happens* to an execution; the worker decides who runs it and records the
outcome. It never writes to the database itself.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dripdrop.channels.base import DeliveryResult, Message
from dripdrop.channels.registry import get_provider
from dripdrop.definitions.suppressions import engine_key
from dripdrop.engine import flow, frequency_caps, quiet_hours, rate_limits
from dripdrop.engine.conditions import next_window_opening
from dripdrop.engine.context import HookValues, base_context, id_text
from dripdrop.engine.defs import AdapterSet, StepDef, VersionDef
from dripdrop.engine.recipients import resolve_recipient
from dripdrop.engine.routing import choose_adapter, no_adapter_reason
from dripdrop.engine.suppression import PENDING
from dripdrop.engine.templating import render_fields
from dripdrop.errors import DeliveryError, DripDropError, PermanentError, TransientError
from dripdrop.observability import instrument
from dripdrop.timing.deadline import deadline

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
    # Flow control's inputs, read with the claim only when a step needs them (engine/flow.py):
    # sent times per step (throttle) and the enrollment's events (digests).
    sends: dict[Any, list[datetime]] = field(default_factory=dict)
    events: list[tuple[str, Any, datetime]] = field(default_factory=list)
    hooks: Any = None  # the execution's hook values, reused by its transitions
    # Suppressions (engine/suppression.py): the normalised recipient looked up with the batch
    # (PENDING: only rendering tells it), and the reason when it is suppressed.
    recipient_key: str | None = None
    suppressed: str | None = None
    # A drain's hold on its concurrency (worker/slots.py): None where nothing bounds it.
    ticket: Any = None
    # The fence (worker/fence.py): the executions of its batch that wait for the network, in
    # order, and this one's place among them (so a fence query can confirm the next ones too);
    # a confirmation taken ahead (fence.Ahead); and when the confirmation this delivery goes
    # out on was asked (monotonic).
    batch: list[Job] | None = None
    position: int = 0
    ahead: Any = None
    confirmed_at: float | None = None


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
    route: Any = None  # flow.Route: where the chain goes (None: the next position)
    side: Any = None  # flow.Side: a recurring step's next occurrence, inserted beside the chain
    branch: str | None = None  # the split branch chosen
    delivery_ms: int | None = None  # how long the provider took to answer (analytics)

    @property
    def advances(self) -> bool:
        """Does the enrollment move to its next step? (Replays and a recurring step's own
        occurrences never move it.)"""
        if self.job.execution.replay_of is not None:
            return False
        if getattr(self.job.execution, "occurrence", None) is not None:
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
        if c.condition_type == "time_window":
            continue
        held, _ = await flow.condition_holds(c, job, hooks, now, explain=False)
        if not held:  # one evaluator for steps and transitions; the reason only when it failed
            _, what = await flow.condition_holds(c, job, hooks, now)
            return ("skip", f"condition not met: {what}")
    return None


def _flow_step(job: Job, now: datetime) -> Outcome | None:
    """Steps that deliver nothing themselves: a split (choose a branch) and a recurring step
    reached by its chain (its own occurrences follow on their schedule; the chain goes on)."""
    ex, step = job.execution, job.step
    assert step is not None
    if step.plain:
        return None
    if step.config.get("split"):
        branch = flow.assign_branch(step, job.enrollment.id)
        route = flow.split_route(job.version, step, branch)
        return Outcome(
            job,
            "skipped",
            "skipped",
            executed_at=now,
            retry_count=ex.retry_count,
            error_message=route.why,
            route=route,
            branch=branch["name"],
        )
    until = (flow.repeat_of(step) or {}).get("until_event")
    if until and job.event_counts.get(until, 0) and getattr(ex, "occurrence", None) is not None:
        return Outcome(
            job,
            "skipped",
            "skipped",
            executed_at=now,
            retry_count=ex.retry_count,
            error_message=f"recurring: ended by event {until!r}",
        )
    if flow.repeat_of(step) is not None and getattr(ex, "occurrence", None) is None:
        side = flow.next_occurrence(step, ex.scheduled_for or now, 0, job.event_counts)
        when = f"first on {side.due.isoformat()}" if side else "no occurrence left"
        return Outcome(
            job,
            "skipped",
            "skipped",
            executed_at=now,
            retry_count=ex.retry_count,
            error_message=f"recurring: repeats on its own schedule ({when})",
            side=side,
        )
    return None


def deferred_outcome(job: Job, when: datetime, why: str, adapter_id: Any = None) -> Outcome:
    """The execution waits, unsent and not a retry, until ``when`` (a time window, quiet
    hours, a rate limit); ``why`` is shown on it."""
    ex = job.execution
    return Outcome(
        job,
        "deferred",
        "scheduled",
        scheduled_for=when,
        retry_count=ex.retry_count,
        adapter_id=adapter_id if adapter_id is not None else ex.adapter_id,
        error_message=f"deferred to {when.isoformat()} ({why})",
    )


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
        async with deadline(seconds):  # asyncio.timeout's behaviour, one timer per loop
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
    With ``fence``, the claim is confirmed just before the provider gets the message. A step
    that finished also learns where its chain goes next (transitions, engine/flow.py)."""
    outcome = await _run_step(job, services, now, fence=fence)
    step = job.step
    if step is None or outcome.kind not in ("sent", "skipped", "failed"):
        return outcome
    if not job.version.transitions and step.plain:  # a linear step: nothing more to decide
        return outcome
    try:
        if outcome.advances and outcome.route is None and flow.transitions_of(job):
            if job.hooks is None:
                job.hooks = HookValues(
                    services,
                    job.version,
                    job.enrollment,
                    base_context(job.version, step, job.enrollment),
                )
            outcome.route = await flow.choose_route(job, job.hooks, now, services.dry_run)
        occurrence = getattr(job.execution, "occurrence", None)
        if occurrence is not None and job.execution.replay_of is None and step.active:
            outcome.side = flow.next_occurrence(
                step, job.execution.scheduled_for or now, occurrence, job.event_counts
            )
    except Exception as exc:  # a transition's hook failed: the step is done, the chain halts
        return _failed(
            job,
            now,
            exc,
            outcome.recipient,
            outcome.payload,
            outcome.adapter_id,
            prefix="choosing the next step failed: ",
        )
    return outcome


async def _run_step(job: Job, services: Any, now: datetime, *, fence: bool = False) -> Outcome:
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
    control = _flow_step(job, now)
    if control is not None:
        return control
    if job.suppressed is not None:  # before rendering: nothing of it is built or sent
        return _suppressed(job, now, job.suppressed, job.recipient_key)
    rt = getattr(services, "rt", None)
    quiet = quiet_hours.window_for(
        step.channel,
        step.config,
        job.version.config,
        job.version.category,
        getattr(rt, "quiet_hours", None),
    )
    if quiet is not None:
        ends = quiet_hours.next_allowed(quiet, job.enrollment.data or {}, now)
        if ends is not None:  # a retry or a replay waits too: nobody is woken at night
            return deferred_outcome(job, ends, "quiet hours")
    base = base_context(job.version, step, job.enrollment)
    wants_link = step.channel == "email" and rt is not None and rt.public_url is not None
    if wants_link and job.recipient_key not in (None, PENDING):
        base["unsubscribe_url"] = _unsubscribe_link(rt, job, job.recipient_key, now)
    digest = None if step.plain else flow.digest_of(step)
    if digest is not None:
        base["events"] = flow.digest_events(digest, job.events, now, job.enrollment.started_at)
        if not base["events"]:
            return Outcome(
                job,
                "skipped",
                "skipped",
                executed_at=now,
                retry_count=ex.retry_count,
                error_message=f"digest: no {digest['event_key']!r} events to send",
            )
    hooks = job.hooks = HookValues(services, job.version, job.enrollment, base)
    adapter_id: uuid.UUID | None = ex.adapter_id
    payload: Any = None
    recipient = None
    try:
        verdict = await _conditions(job, hooks, now)
        if verdict and verdict[0] == "defer":
            return deferred_outcome(job, verdict[1], "time window")
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
        recipient = resolve_recipient(step.channel, fields, job.enrollment.data or {})
        if job.recipient_key is PENDING:  # a templated recipient: checked once rendered
            key = engine_key(step.channel, recipient, rt.phone_region if rt else None)
            reason = await _suppressed_after_rendering(job, services, key)
            if reason is not None:
                return _suppressed(job, now, reason, key)
            job.recipient_key = key  # known now: the fence checks it again
            if wants_link and key is not None:
                base["unsubscribe_url"] = _unsubscribe_link(rt, job, key, now)
                fields = await render_fields(step, base, hooks, services)
                recipient = resolve_recipient(step.channel, fields, job.enrollment.data or {})
        if "unsubscribe_url" in base:  # List-Unsubscribe headers (a step's own URL wins)
            fields.setdefault("unsubscribe_url", base["unsubscribe_url"])
        payload = dict(fields)
        if hooks.values:
            payload["hook_values"] = dict(hooks.values)
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
            delivery_ms = None
        else:
            # Frequency caps before rate limits: a capped message takes no rate-limit slot.
            caps = frequency_caps.caps_for(step, job.version, getattr(rt, "frequency_caps", None))
            if caps:
                over = await _reserve_frequency_caps(
                    job, services, caps, now, recipient, adapter_id
                )
                if over is not None:
                    return over
            limits = rate_limits.limits_for(
                adapter, recipient, getattr(rt, "domain_rate_limits", None) or {}
            )
            go_at = None
            if limits:
                deferred, go_at = await _reserve_rate_limits(job, services, limits, adapter_id)
                if deferred is not None:
                    return deferred
            stopped = await _fence_and_slot(job, services, fence)
            if stopped is not None:
                return stopped
            try:
                # The fence was checked while the slot approached. A send woken well past its
                # slot (the event loop stalled) would go out together with later ones: it
                # takes a new slot instead, so stalls become delays, not bursts.
                for _ in range(3):
                    if go_at is None:
                        break
                    await asyncio.sleep(max(0.0, go_at - time.monotonic()))
                    if time.monotonic() - go_at <= rate_limits.slack(limits):
                        break
                    deferred, go_at = await _reserve_rate_limits(job, services, limits, adapter_id)
                    if deferred is not None:
                        return deferred
                started = time.perf_counter()
                result = await deliver(message, adapter, services.delivery_context)
                delivery_ms = round((time.perf_counter() - started) * 1000)
            finally:
                if job.ticket is not None:  # it holds a sending slot: _fence_and_slot took one
                    job.ticket.stop_sending()
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
            delivery_ms=delivery_ms,
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


async def _fence_and_slot(job: Job, services: Any, fence: bool) -> Outcome | None:
    """The fence, then the request's sending slot when a drain bounds them (worker/slots.py).
    Returns the outcome to record instead of sending; None: send, and then a job with a
    ticket holds a sending slot (the caller gives it back with ``ticket.stop_sending()`` in a
    ``finally``). A confirmation that went stale while the slot was awaited is made again."""
    confirmed = None
    if fence and services.fence is not None:
        verdict = await services.fence.check(job)
        if verdict is not None:
            return verdict
        confirmed = job.confirmed_at
    ticket = job.ticket
    if ticket is None:
        return None
    await ticket.start_sending()
    if confirmed is not None and ticket.stale(confirmed):
        try:
            verdict = await services.fence.check(job)
        except BaseException:
            ticket.stop_sending()
            raise
        if verdict is not None:
            ticket.stop_sending()
            return verdict
    return None


def _suppressed(job: Job, now: datetime, reason: str, recipient: str | None) -> Outcome:
    """Skipped, never rendered or sent: the recipient is suppressed. The enrollment goes on."""
    return Outcome(
        job,
        "skipped",
        "skipped",
        executed_at=now,
        retry_count=job.execution.retry_count,
        recipient=recipient if recipient is not PENDING else None,
        error_message=f"suppressed: {reason}",
    )


async def _suppressed_after_rendering(job: Job, services: Any, key: str | None) -> str | None:
    """The suppression of a recipient only its rendering told (one lookup for this job)."""
    if key is None or job.step is None or getattr(services, "db", None) is None:
        return None
    from dripdrop.engine.suppression import check_one

    return await services.db.run(  # type: ignore[no-any-return]
        check_one,
        job.step.channel,
        key,
        job.enrollment.tenant_key,
        job.version.category,
    )


def _unsubscribe_link(rt: Any, job: Job, recipient: str, now: datetime) -> str:
    from dripdrop.engine.unsubscribe import unsubscribe_url

    return unsubscribe_url(
        rt,
        channel="email",
        recipient=recipient,
        tenant_key=job.enrollment.tenant_key,
        category=job.version.category,
        enrollment_id=id_text(job.enrollment),
        now=now,
    )


# Built-in providers scrub what they return and raise (channels.http.send, Secrets.of); a
# provider an app registers may not, so its answers and errors are scrubbed here.
_BUILT_IN = "dripdrop.channels.providers."


async def _reserve_rate_limits(
    job: Job, services: Any, limits: list[rate_limits.Limit], adapter_id: Any
) -> tuple[Outcome | None, float | None]:
    """Reserve the send under its rate limits: a close slot gives the monotonic time to send
    at; a distant one defers the execution (never dropped; the deferral says which limit)."""
    run = getattr(services.db, "run_autocommit", services.db.run)
    wait, why = await run(rate_limits.reserve, limits, services.rt.now())
    if wait <= timedelta(0):
        return None, None
    if wait <= rate_limits.MAX_WAIT:
        return None, time.monotonic() + wait.total_seconds()
    when = services.rt.now() + wait
    return deferred_outcome(job, when, f"rate limit: {why}", adapter_id), None


async def _reserve_frequency_caps(
    job: Job,
    services: Any,
    caps: list[frequency_caps.Cap],
    now: datetime,
    recipient: Any,
    adapter_id: Any,
) -> Outcome | None:
    """Reserve the send under the subscriber's frequency caps: None when it fits; else the
    execution is deferred to when it fits, or skipped (``"over": "skip"``), visibly."""
    run = getattr(services.db, "run_autocommit", services.db.run)
    full = await run(
        frequency_caps.reserve, caps, job.enrollment, id_text(job.execution), services.rt.now()
    )
    if full is None:
        return None
    cap, when = full
    if cap.over == "skip":
        return Outcome(
            job,
            "skipped",
            "skipped",
            executed_at=now,
            retry_count=job.execution.retry_count,
            recipient=recipient,
            adapter_id=adapter_id,
            error_message=f"skipped: over the {cap.label}",
        )
    return deferred_outcome(job, when, cap.label, adapter_id)


async def deliver(message: Message, adapter: Any, ctx: Any) -> DeliveryResult:
    """One send through the adapter's provider (timed and traced when observed: see
    dripdrop.observability.instrument)."""
    if instrument.observes_delivery(adapter):
        return await instrument.observe_delivery(_send, message, adapter, ctx)
    return await _send(message, adapter, ctx)


async def _send(message: Message, adapter: Any, ctx: Any) -> DeliveryResult:
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
