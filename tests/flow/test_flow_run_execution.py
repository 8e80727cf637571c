"""Throttles and digests run the same through ``dd.run_execution(id)`` (a scheduler other than
PostgreSQL: Celery, or the user's own) as through ``run_due``: the same sequence, events and
clock, once drained by ``run_due`` and once handed out by the dispatcher to a scheduler that
calls ``run_execution`` for each id — the same states, due times, reasons and messages."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from flow_support import Flow

from dripdrop.testing import FakeClock, TestEnv, clear_outbox, outbox
from dripdrop.worker.dispatch import dispatch_once

Drive = Callable[..., None]


class RecordingScheduler:
    """Records the execution ids the dispatcher hands it; ``run_handed`` then runs each with
    ``dd.run_execution``, as a job of a real scheduler would."""

    def __init__(self) -> None:
        self.dd: Any = None
        self.handed: list[uuid.UUID] = []
        self.runs: list[Any] = []

    def schedule(self, execution_id: uuid.UUID, when: datetime) -> str:
        self.handed.append(execution_id)
        return f"job-{execution_id}"

    def cancel(self, job_id: str) -> None:
        pass

    def run_handed(self) -> None:
        ids, self.handed = self.handed, []
        self.runs += [self.dd.run_execution(i) for i in ids]


def with_adapters(dd: Any) -> Flow:
    for channel in ("email", "sms", "slack", "webhook"):
        dd.create_channel_adapter(name=f"mem-{channel}", channel=channel, provider="memory")
    return Flow(dd)


@pytest.fixture
def paths(env: TestEnv, database_url: str) -> Iterator[dict[str, tuple[TestEnv, Drive]]]:
    """Two schemas on clocks at the same time: one drained by run_due, one by the dispatcher and
    run_execution."""
    scheduler = RecordingScheduler()
    other = TestEnv(database_url, clock=FakeClock(env.clock()), scheduler=scheduler)
    scheduler.dd = other.dd

    def by_run_due(**delta: float) -> None:
        env.advance_and_run(**delta)

    def by_run_execution(**delta: float) -> None:
        other.clock.advance(**delta)
        while dispatch_once(other.dd.runtime, scheduler, redispatch_after=600.0):
            scheduler.run_handed()

    try:
        yield {"run_due": (env, by_run_due), "run_execution": (other, by_run_execution)}
    finally:
        assert all(run.ran for run in scheduler.runs), [r for r in scheduler.runs if not r.ran]
        other.close()


def what_happened(dd: Any, enrollment: Any) -> dict[str, Any]:
    """Everything the two paths must agree on (ids aside)."""
    keys = {s.id: s.key for s in dd.list_steps(enrollment.sequence_version_id)}
    executions = [
        (
            keys[x.step_id],
            x.occurrence,
            x.state,
            x.scheduled_for,
            x.executed_at,
            x.error_message,
            (x.payload or {}).get("subject"),
            (x.payload or {}).get("body"),
        )
        for x in dd.list_executions(enrollment.id)
    ]
    messages = [(m.channel, m.recipient, m.payload) for m in outbox()]
    final = dd.get_enrollment_by_id(enrollment.id)
    return {
        "executions": executions,
        "messages": messages,
        "enrollment": (final.state, final.completed_at),
    }


def run_both(
    paths: dict[str, tuple[TestEnv, Drive]], scenario: Callable[[Any, Drive], Any]
) -> dict[str, dict[str, Any]]:
    seen = {}
    for name, (env, drive) in paths.items():
        clear_outbox()
        enrollment = scenario(env.dd, drive)
        seen[name] = what_happened(env.dd, enrollment)
    return seen


def throttled(dd: Any, drive: Drive) -> Any:
    """A daily step (10 occurrences) throttled to 2 sends per 7 days, and a transition guarded
    by a throttle on the step it leads to."""
    flow = with_adapters(dd)
    daily = {"type": "cron", "cron_expression": "0 9 * * *", "timezone": "UTC"}
    step = flow.step(
        "nudge", timing=daily, config={"subject": "nudge", "body": "b", "repeat": {"times": 10}}
    )
    dd.create_condition(
        step.id,
        condition_type="throttle",
        config={"max_sends": 2, "window_amount": 7, "window_unit": "days"},
    )
    e = flow.enroll()
    for _ in range(11):
        drive(days=1)
    return e


def test_a_throttled_step_runs_the_same_through_run_execution(paths) -> None:
    seen = run_both(paths, throttled)
    states = [x[2] for x in seen["run_due"]["executions"] if x[1]]
    assert states == ["sent", "sent", *["skipped"] * 5, "sent", "sent", "skipped"]
    assert any("2 of at most 2 sends" in (x[5] or "") for x in seen["run_due"]["executions"])
    assert seen["run_execution"] == seen["run_due"]


def throttled_transition(dd: Any, drive: Drive) -> Any:
    """a → c while c was sent less than once in the last day (a throttle on the transition),
    else a → b → c; c loops back to a, which waits 3 hours."""
    flow = with_adapters(dd)
    hours = {"type": "delay", "delay_unit": "hours", "relative_to": "previous_step"}
    a = flow.step("a", timing={**hours, "delay_amount": 3})
    flow.step("b", timing={**hours, "delay_amount": 2})
    c = flow.step("c")
    t = flow.edge(a, c, mode="all")
    dd.create_condition(
        transition_id=t.id,
        condition_type="throttle",
        config={"max_sends": 1, "window_amount": 1, "window_unit": "days"},
    )
    flow.edge(c, a)
    e = flow.enroll()
    for _ in range(16):
        drive(hours=3)
    return e


def test_a_throttle_on_a_transition_runs_the_same_through_run_execution(paths) -> None:
    seen = run_both(paths, throttled_transition)
    trail = [(x[0], x[2]) for x in seen["run_due"]["executions"]]
    assert ("c", "sent") in trail and ("b", "sent") in trail, trail  # the throttle took both ways
    assert seen["run_execution"] == seen["run_due"]


def digests(dd: Any, drive: Drive) -> Any:
    """A digest of at most 3 comments a day (sent once it has 3), then two of 6 hours (the second
    gets nothing new and is skipped), with other events among the comments."""
    flow = with_adapters(dd)
    flow.step(
        "daily",
        config={
            "subject": "{{ events | size }} new comments",
            "body": "{% for e in events %}{{ e.event_data.text }};{% endfor %}",
            "digest": {
                "event_key": "comment",
                "window_amount": 1,
                "window_unit": "days",
                "max_events": 3,
            },
        },
        timing={"type": "delay", "delay_amount": 1, "delay_unit": "hours"},
    )
    for name in ("six", "quiet"):
        flow.step(
            name,
            config={
                "subject": "{{ events | size }}",
                "body": "{% for e in events %}{{ e.event_data.text }};{% endfor %}",
                "digest": {"event_key": "comment", "window_amount": 6, "window_unit": "hours"},
            },
        )
    e = flow.enroll()
    for i in range(5):
        dd.track_event(e.id, "comment", {"text": f"c{i}"})
        dd.track_event(e.id, "other", {"text": "no"})
        drive(minutes=5)
    drive(hours=1)
    dd.track_event(e.id, "comment", {"text": "late"})
    drive(hours=5)
    drive(hours=7)
    return e


def test_digests_run_the_same_through_run_execution(paths) -> None:
    seen = run_both(paths, digests)
    sent = [(x[0], x[2], x[6], x[7]) for x in seen["run_due"]["executions"]]
    assert sent == [
        ("daily", "sent", "3 new comments", "c0;c1;c2;"),  # closed by its third comment
        ("six", "sent", "1", "late;"),
        ("quiet", "skipped", None, None),  # nothing new in its window
    ]
    assert seen["run_execution"] == seen["run_due"]
