"""Progression: order, delays, cron, completion, versions pinned."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dripdrop import AlreadyEnrolled, ValidationError
from dripdrop.testing import outbox


def subjects(channel: str = "email") -> list[str]:
    return [m.payload.get("subject") or m.payload.get("body") for m in outbox(channel)]


def states(dd, enrollment) -> list[tuple[str, str]]:
    steps = {s.id: s.key for s in dd.list_steps(enrollment.sequence_version_id)}
    return [(steps[x.step_id], x.state) for x in dd.list_executions(enrollment.id)]


def test_immediate_steps_chain_and_enrollment_completes(dd, flow):
    flow.step("one")
    flow.step("two")
    e = flow.enroll(name="Ada")
    summary = dd.run_due()
    assert summary.sent == 2
    assert subjects() == ["one Ada", "two Ada"]
    done = dd.get_enrollment("flow", "User", 1)
    assert done.state == "completed" and done.completed_at is not None
    assert states(dd, e) == [("one", "sent"), ("two", "sent")]


def test_delay_is_measured_from_enrollment_start(dd, flow, env, clock):
    start = clock()
    flow.step("day1", timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"})
    flow.step("day3", timing={"type": "delay", "delay_amount": 3, "delay_unit": "days"})
    flow.step("also3", timing={"type": "delay", "delay_amount": 3, "delay_unit": "days"})
    e = flow.enroll()
    assert dd.run_due().sent == 0
    env.advance_and_run(days=1)
    assert subjects() == ["day1 "]
    env.advance_and_run(days=1, hours=23)
    assert len(outbox()) == 1
    env.advance_and_run(hours=1)
    assert subjects() == ["day1 ", "day3 ", "also3 "]
    times = [x.scheduled_for for x in dd.list_executions(e.id)]
    assert times == [
        start + timedelta(days=1),
        start + timedelta(days=3),
        start + timedelta(days=3),
    ]


def test_delay_relative_to_previous_step(dd, flow, env, clock):
    start = clock()
    flow.step("a", timing={"type": "delay", "delay_amount": 2, "delay_unit": "days"})
    flow.step(
        "b",
        timing={
            "type": "delay",
            "delay_amount": 1,
            "delay_unit": "days",
            "relative_to": "previous_step",
        },
    )
    e = flow.enroll()
    env.advance_and_run(days=2)
    env.advance_and_run(days=1)
    assert [x.scheduled_for for x in dd.list_executions(e.id)] == [
        start + timedelta(days=2),
        start + timedelta(days=3),
    ]


def test_later_step_never_fires_before_the_previous_one(dd, flow, env, clock):
    start = clock()
    flow.step("slow", timing={"type": "delay", "delay_amount": 5, "delay_unit": "days"})
    flow.step("early", timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"})
    e = flow.enroll()
    env.advance_and_run(days=2)
    assert outbox() == []
    env.advance_and_run(days=3)
    assert subjects() == ["slow ", "early "]
    assert dd.list_executions(e.id)[1].scheduled_for == start + timedelta(days=5)


def test_cron_step_runs_strictly_after_the_previous_step_in_its_timezone(dd, flow, env):
    # The fake clock starts on Monday 2030-01-07 09:00 UTC (04:00 in New York).
    flow.step("welcome")
    flow.step(
        "digest",
        timing={
            "type": "cron",
            "cron_expression": "every monday at 9am",
            "timezone": "America/New_York",
        },
    )
    e = flow.enroll()
    dd.run_due()
    digest = dd.list_executions(e.id)[1]
    assert digest.scheduled_for.isoformat() == "2030-01-07T14:00:00+00:00"
    env.advance_and_run(hours=5)
    assert subjects() == ["welcome ", "digest "]


def test_enrollment_is_pinned_to_its_version(dd, flow):
    flow.step("v1 step")
    first = flow.enroll(1)
    v2 = dd.create_sequence_version(flow.seq.id)
    dd.create_step(v2.id, name="v2 step", channel="email", config={"subject": "v2", "body": "b"})
    dd.activate_version(v2.id)
    second = flow.enroll(2)
    assert first.sequence_version_id == flow.version.id
    assert second.sequence_version_id == v2.id
    dd.run_due()
    by_recipient = {m.recipient: m.payload["subject"] for m in outbox()}
    assert by_recipient == {"u1@example.com": "v1 step ", "u2@example.com": "v2"}


def test_inactive_steps_are_walked_past(dd, flow):
    flow.step("a")
    b = flow.step("b")
    flow.step("c")
    dd.deactivate_step(b.id)
    flow.enroll()
    dd.run_due()
    assert subjects() == ["a ", "c "]


def test_conflicts_raise_ignore_or_restart(dd, flow, env):
    flow.step("a")
    flow.step("b", timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"})
    e = flow.enroll(name="first")
    with pytest.raises(AlreadyEnrolled) as info:
        flow.enroll(name="again")
    assert info.value.enrollment.id == e.id
    same = dd.enroll("flow", {"type": "User", "id": 1}, data={"x": 1}, on_conflict="ignore")
    assert same.id == e.id and same.data["name"] == "first"
    dd.run_due()
    restarted = dd.enroll(
        "flow",
        {"type": "User", "id": 1},
        data={"email": "u1@example.com", "name": "again"},
        on_conflict="restart",
    )
    assert restarted.id == e.id and restarted.state == "active"
    execs = dd.list_executions(e.id)
    assert [x.state for x in execs].count("cancelled") == 1  # the pending day-1 step
    dd.run_due()
    assert subjects() == ["a first", "a again"]


def test_enroll_validates_its_input(dd, flow):
    flow.step("a")
    with pytest.raises(ValidationError) as info:
        dd.enroll("flow", {"type": "", "id": None})
    assert set(info.value.errors) == {"subscriber.type", "subscriber.id"}
    with pytest.raises(ValidationError) as info:
        dd.enroll("flow", {"type": "User", "id": 1}, data={"when": object()})
    assert "data" in info.value.errors
    with pytest.raises(ValidationError) as info:
        dd.enroll("flow", {"type": "User", "id": 1}, on_conflict="merge")
    assert "on_conflict" in info.value.errors
    dd.deactivate_version(flow.version.id)
    with pytest.raises(ValidationError) as info:
        dd.enroll("flow", {"type": "User", "id": 1})
    assert "no active version" in info.value.errors["sequence_key"][0]


def test_subscriber_ids_of_any_kind_are_text(dd, flow):
    import uuid

    flow.step("a")
    uid = uuid.uuid4()
    e = dd.enroll("flow", {"type": "Lead", "id": uid}, data={"email": "l@x.io"})
    assert e.subscriber_id == str(uid)
    assert dd.get_enrollment("flow", "Lead", uid).id == e.id
    assert dd.get_enrollment("flow", "Lead", "nope") is None
