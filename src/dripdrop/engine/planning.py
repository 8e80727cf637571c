"""Progression rules in one place: when the next step is due (used by the worker, run_due and
simulate alike). Pure functions over definitions and times."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dripdrop.engine.defs import StepDef
from dripdrop.ids import new_id
from dripdrop.timing import due_time, event_timeout_at


@dataclass(frozen=True, slots=True)
class Plan:
    """How a step's execution starts: due at ``scheduled_for`` (None = only when its event
    arrives) and, for event steps still waiting, the event key it waits for."""

    scheduled_for: datetime | None
    waiting_for: str | None = None


def is_subset(wanted: Any, actual: Any) -> bool:
    """``trigger_data`` matching: every key of ``wanted`` is in ``actual`` with an equal value
    (nested dicts match recursively)."""
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(
            k in actual and is_subset(v, actual[k]) for k, v in wanted.items()
        )
    return bool(wanted == actual)


def event_matches(timing: dict[str, Any], event_key: str, event_data: Any) -> bool:
    """Does this event satisfy an event step's trigger?"""
    return timing.get("trigger_event") == event_key and is_subset(
        timing.get("trigger_data") or {}, event_data or {}
    )


def plan_step(
    step: StepDef,
    *,
    enrollment_start: datetime,
    previous_done: datetime | None,
    events: Iterable[tuple[str, Any, datetime]] = (),
) -> Plan:
    """When ``step`` becomes due, given when the enrollment started and when the previous step was
    done. ``events`` are the enrollment's events (key, data, occurred_at): an event tracked
    earlier in the enrollment satisfies an event step at once."""
    timing = step.timing
    since = previous_done or enrollment_start
    config = step.config
    if config.get("repeat") not in (None, False):
        # A recurring step's chain execution is due at once: it schedules the step's own
        # occurrences and lets the chain go on (engine/flow.py).
        return Plan(scheduled_for=since)
    digest = config.get("digest")
    if digest and timing.get("type") == "immediate":  # a digest waits for its window to close
        from dripdrop.engine.flow import digest_window

        return Plan(scheduled_for=since + digest_window(digest))
    if timing.get("type") == "event":
        for key, data, occurred_at in events:
            if occurred_at >= enrollment_start and event_matches(timing, key, data):
                return Plan(scheduled_for=since)
        return Plan(
            scheduled_for=event_timeout_at(timing, activated_at=since, normalized=True),
            waiting_for=timing["trigger_event"],
        )
    return Plan(
        scheduled_for=due_time(
            timing,
            enrollment_start=enrollment_start,
            previous_done=previous_done,
            normalized=True,
        )
    )


def execution_row(
    *,
    enrollment_id: uuid.UUID,
    step: StepDef,
    plan: Plan,
    tenant_key: str | None,
    replay_of: uuid.UUID | None = None,
) -> dict[str, Any]:
    """The values of a new ``step_executions`` row. Its id doubles as the idempotency key, which
    stays the same across retries."""
    exec_id = new_id()
    return {
        "id": exec_id,
        "enrollment_id": enrollment_id,
        "step_id": step.id,
        "state": "scheduled",
        "scheduled_for": plan.scheduled_for,
        "waiting_for": plan.waiting_for,
        "channel": step.channel,
        "idempotency_key": str(exec_id),
        "tenant_key": tenant_key,
        "replay_of": replay_of,
        "held": False,
        "retry_count": 0,
    }
