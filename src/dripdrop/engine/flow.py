"""Flow control at run time: which step follows a finished one (transitions, splits), recurring
steps, digests and the throttle condition.

Everything here is decided while an execution runs (``engine/process.py``) and carried on its
``Outcome``; the worker writes it in the same statement that records the outcome
(``worker/batch.py: finish_params``), so the decision and the move of the enrollment stay one
step of one chain. Pure functions over definitions, the claimed rows and the clock.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dripdrop.engine.conditions import compare, lookup, next_window_opening
from dripdrop.engine.defs import StepDef, TransitionDef, VersionDef
from dripdrop.errors import PermanentError
from dripdrop.timing import delay_delta, next_cron_time

#: A route's target meaning "the enrollment is done".
COMPLETE = "complete"


@dataclass(frozen=True, slots=True)
class Route:
    """Where the chain goes after a step: ``to`` a step id, or COMPLETE; ``why`` says which
    transition or branch decided it (shown by simulate). ``exit_reason`` names why the
    enrollment ends when ``to`` is COMPLETE (holdout, transition…)."""

    to: uuid.UUID | str
    why: str
    loop: bool = False  # the target comes at or before the step: a loop back
    exit_reason: str | None = None
    target: StepDef | None = None  # the step ``to`` names (looked up once)


@dataclass(frozen=True, slots=True)
class Side:
    """An extra execution to insert beside the chain: the next occurrence of a recurring
    step."""

    step: StepDef
    due: datetime
    occurrence: int


# -- conditions (shared by steps and transitions) ---------------------------------------------


async def condition_holds(
    c: Any, job: Any, hooks: Any, now: datetime, explain: bool = True
) -> tuple[bool, str]:
    """One condition of a step or a transition: (holds, what was compared; "" unless
    ``explain``: the worker's hot path formats nothing it does not show). Time windows hold
    while open; the step's own loop defers outside one instead."""
    kind = c.condition_type
    data = job.enrollment.data or {}
    if kind == "time_window":
        opening = next_window_opening(c.config or {}, data, now)
        return opening is None, "the time window is open" if opening is None else (
            f"the time window is closed until {opening.isoformat()}"
        )
    if kind == "throttle":
        return throttle_allows(c, job, now)
    if kind == "enrollment_data":
        actual, what = lookup(data, c.field_path), "data {!r}"
        named = c.field_path
    elif kind == "event":
        named = (c.config or {}).get("event_key")
        actual, what = job.event_counts.get(named, 0), "count of event {!r}"
    elif kind == "hook":
        if c.http_hook_id:
            hook = next(
                (h for h in job.version.http_hooks.values() if h.id == c.http_hook_id), None
            )
            if hook is None:
                raise PermanentError(f"HTTP hook {c.http_hook_id} is missing or inactive")
            actual, what, named = await hooks.get(hook.key), "HTTP hook {!r}", hook.key
        else:
            actual, what = await hooks.get(c.hook_function), "hook {!r}"
            named = c.hook_function
    else:
        raise PermanentError(f"unknown condition type {kind!r}")
    held = compare(actual, c.operator, c.expected_value)
    if not explain:
        return held, ""
    return held, f"{what.format(named)} is {actual!r}, expected {c.operator} {c.expected_value!r}"


def throttle_window(config: dict[str, Any]) -> timedelta:
    return delay_delta(int(config.get("window_amount", 1)), config.get("window_unit", "days"))


def throttle_allows(c: Any, job: Any, now: datetime) -> tuple[bool, str]:
    """At most ``max_sends`` sends of the guarded step to this subscriber per window. A
    subscriber has one enrollment per sequence, so its sends are the enrollment's."""
    config = c.config or {}
    step_id = throttle_target(c, job)
    since = now - throttle_window(config)
    sent = sum(1 for at in job.sends.get(step_id, ()) if at > since)
    limit = int(config.get("max_sends", 1))
    return sent < limit, f"{sent} of at most {limit} sends in the window"


def throttle_target(c: Any, job: Any) -> Any:
    """The step a throttle counts: the step it guards, or a transition's target."""
    if getattr(c, "transition_id", None) is not None:
        for t in job.version.transitions_from(job.step.id):
            if t.id == c.transition_id:
                return t.to_step_id
    return c.step_id


# -- transitions and splits -------------------------------------------------------------------


async def transition_holds(
    t: TransitionDef, job: Any, hooks: Any, now: datetime, explain: bool = True
) -> tuple[bool, str]:
    if t.condition_mode == "always" or not t.conditions:
        return True, "always"
    reasons = []
    for c in t.conditions:
        held, why = await condition_holds(c, job, hooks, now, explain)
        if t.condition_mode == "any" and held:
            return True, why
        if t.condition_mode == "all" and not held:
            return False, why
        reasons.append(why)
    return t.condition_mode == "all", "; ".join(reasons)


def _target_label(version: VersionDef, to: Any) -> str:
    if to is None:
        return "the end"
    step = version.step(to)
    return repr(step.key) if step else str(to)


def is_loop(version: VersionDef, source: StepDef, target: StepDef) -> bool:
    return (target.position, target.key) <= (source.position, source.key)


def transitions_of(job: Any) -> tuple[TransitionDef, ...]:
    """The transitions from the job's step, in priority order (kept with the step)."""
    step, version = job.step, job.version
    return step.derived("transitions", version, None, lambda: version.transitions_from(step.id))


async def choose_route(job: Any, hooks: Any, now: datetime, explain: bool = True) -> Route | None:
    """The first transition (ascending priority) whose conditions hold decides where the chain
    goes; None when the step has none, or none holds (the next position, as without
    transitions). ``explain`` writes down why (simulate shows it)."""
    step, version = job.step, job.version
    tried = []
    for t in transitions_of(job):
        held, why = await transition_holds(t, job, hooks, now, explain)
        label = (
            f"transition (priority {t.priority}) to {_target_label(version, t.to_step_id)}"
            if explain
            else ""
        )
        if held:
            note = f"{label}: {why}" + (f" (not taken before: {'; '.join(tried)})" if tried else "")
            if t.to_step_id is None:
                return Route(COMPLETE, note, exit_reason="transition")
            target = version.step(t.to_step_id)
            loop = target is not None and is_loop(version, step, target)
            return Route(t.to_step_id, note, loop=loop, target=target)
        if explain:
            tried.append(f"{label}: {why}")
    return None


def split_branches(step: StepDef) -> list[dict[str, Any]]:
    """A split step's branches plus its holdout (a branch named ``holdout`` with no target)."""
    split = step.config.get("split") or {}
    branches = [dict(b) for b in split.get("branches") or ()]
    holdout = split.get("holdout")
    if holdout:
        branches.append({"name": "holdout", "weight": holdout, "holdout": True})
    return branches


def split_point(enrollment_id: Any, step_id: Any) -> float:
    """A number in [0, 1) fixed by the enrollment and the step: the same branch on every run
    and re-run (sticky), independent between steps, evenly spread."""
    digest = hashlib.blake2b(f"{enrollment_id}:{step_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign_branch(step: StepDef, enrollment_id: Any) -> dict[str, Any]:
    branches = split_branches(step)
    total = sum(float(b["weight"]) for b in branches)
    point = split_point(enrollment_id, step.id) * total
    for b in branches:
        point -= float(b["weight"])
        if point < 0:
            return b
    return branches[-1]


def split_route(version: VersionDef, step: StepDef, branch: dict[str, Any]) -> Route:
    weight = (
        f"weight {branch['weight']} of {sum(float(b['weight']) for b in split_branches(step)):g}"
    )
    if branch.get("holdout"):
        return Route(
            COMPLETE, f"split: holdout ({weight}), receives nothing", exit_reason="holdout"
        )
    to_key = branch.get("to")
    target = next((s for s in version.steps if s.key == to_key), None) if to_key else None
    if target is None:
        nxt = version.step_after(step.id)
        if nxt is None:
            return Route(COMPLETE, f"split: branch {branch['name']!r} ({weight}) to the end")
        return Route(nxt.id, f"split: branch {branch['name']!r} ({weight}) to {nxt.key!r}")
    return Route(
        target.id,
        f"split: branch {branch['name']!r} ({weight}) to {target.key!r}",
        loop=is_loop(version, step, target),
    )


# -- recurring steps --------------------------------------------------------------------------


def repeat_of(step: StepDef) -> dict[str, Any] | None:
    value = step.config.get("repeat")
    if value is None or value is False:
        return None
    return value if isinstance(value, dict) else {}


def next_occurrence(
    step: StepDef, after: datetime, occurrence: int, event_counts: dict[str, int]
) -> Side | None:
    """The occurrence after ``occurrence`` (0: the first), or None when the repeat is over
    (``times`` reached, or its ``until_event`` has happened)."""
    repeat = repeat_of(step)
    assert repeat is not None
    times = repeat.get("times")
    if times is not None and occurrence >= int(times):
        return None
    until = repeat.get("until_event")
    if until and event_counts.get(until, 0) > 0:
        return None
    timing = step.timing
    due = next_cron_time(timing["cron_expression"], timing["timezone"], after)
    return Side(step, due, occurrence + 1)


# -- digests ----------------------------------------------------------------------------------


def digest_of(step: StepDef | None) -> dict[str, Any] | None:
    return (step.config.get("digest") or None) if step is not None else None


def digest_window(digest: dict[str, Any]) -> timedelta:
    return delay_delta(int(digest.get("window_amount", 1)), digest.get("window_unit", "days"))


def digest_events(
    digest: dict[str, Any],
    events: list[tuple[str, Any, datetime]],
    now: datetime,
    started: datetime,
) -> list[dict[str, Any]]:
    """The events a digest sends: its key, within the window before ``now`` (and since the
    enrollment started), oldest first, at most ``max_events`` (the latest)."""
    since = max(now - digest_window(digest), started)
    picked = [
        {"event_key": key, "event_data": data, "occurred_at": at.isoformat()}
        for key, data, at in events
        if key == digest["event_key"] and since <= at <= now
    ]
    limit = digest.get("max_events")
    return picked[-int(limit) :] if limit else picked


# -- what a batch must read for flow control (worker/batch.py) --------------------------------


def needs_counts(job: Any) -> bool:
    """Does this step's flow read event counts (event conditions of its transitions, a repeat
    until an event)?"""
    step = job.step
    if step is None:
        return False
    repeat = repeat_of(step)
    if repeat is not None and repeat.get("until_event"):
        return True
    return any(
        c.condition_type == "event"
        for t in job.version.transitions_from(step.id)
        for c in t.conditions
    )


def _flow_inputs(job: Any) -> tuple[bool, bool]:
    step = job.step
    conds = list(step.conditions) + [
        c for t in job.version.transitions_from(step.id) for c in t.conditions
    ]
    return any(c.condition_type == "throttle" for c in conds), digest_of(step) is not None


def jobs_needing_flow_inputs(jobs: list[Any]) -> tuple[list[Any], list[Any]]:
    """(jobs whose throttles count sends, jobs whose digests gather events)."""
    throttled, digests = [], []
    for j in jobs:
        if j.step is None:
            continue
        throttle, digest = j.step.derived(
            "flow_inputs", j.version, None, lambda j=j: _flow_inputs(j)
        )
        if throttle:
            throttled.append(j)
        if digest:
            digests.append(j)
    return throttled, digests
