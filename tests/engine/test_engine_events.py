"""Events: event steps with trigger data, earlier events, timeouts, exits, track()."""

from __future__ import annotations

from datetime import timedelta

from dripdrop.testing import outbox


def test_event_step_waits_for_matching_trigger_data(dd, flow, env):
    flow.step("welcome")
    flow.step(
        "thanks",
        timing={
            "type": "event",
            "trigger_event": "order_completed",
            "trigger_data": {"plan": "pro"},
        },
    )
    e = flow.enroll()
    dd.run_due()
    waiting = dd.list_executions(e.id)[-1]
    assert waiting.state == "scheduled" and waiting.scheduled_for is None
    dd.track_event(e.id, "order_completed", {"plan": "basic"})
    assert dd.run_due().sent == 0
    dd.track_event(e.id, "order_completed", {"plan": "pro", "total": 30})
    assert dd.run_due().sent == 1
    assert [m.payload["subject"] for m in outbox()] == ["welcome ", "thanks "]
    assert dd.get_enrollment("flow", "User", 1).state == "completed"


def test_an_event_tracked_earlier_in_the_enrollment_counts(dd, flow, env):
    flow.step("wait a day", timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"})
    flow.step("paid", timing={"type": "event", "trigger_event": "paid"})
    e = flow.enroll()
    dd.track_event(e.id, "paid")
    env.advance_and_run(days=1)
    assert [m.payload["subject"] for m in outbox()] == ["wait a day ", "paid "]


def test_event_timeout_skips_the_step(dd, flow, env):
    flow.step(
        "paid",
        timing={
            "type": "event",
            "trigger_event": "paid",
            "timeout_amount": 3,
            "timeout_unit": "days",
        },
    )
    flow.step("after")
    e = flow.enroll()
    env.advance_and_run(days=2)
    assert outbox() == []
    env.advance_and_run(days=1)
    first, second = dd.list_executions(e.id)
    assert first.state == "skipped" and "timed out" in first.error_message
    assert second.state == "sent"


def test_exit_event_completes_and_cancels(dd, flow, env):
    dd.update_sequence_version(flow.version.id, config={"exit_events": ["unsubscribed"]})
    flow.step("later", timing={"type": "delay", "delay_amount": 2, "delay_unit": "days"})
    e = flow.enroll()
    dd.track_event(e.id, "unsubscribed")
    after = dd.get_enrollment("flow", "User", 1)
    assert after.state == "completed"
    [x] = dd.list_executions(e.id)
    assert x.state == "cancelled" and "unsubscribed" in x.error_message
    env.advance_and_run(days=3)
    assert outbox() == []


def test_track_by_subscriber_reaches_every_active_enrollment(dd, flow):
    flow.step("paid", timing={"type": "event", "trigger_event": "paid"})
    other = dd.create_sequence(name="Other", key="other")
    ov = dd.create_sequence_version(other.id, active=True)
    dd.create_step(
        ov.id,
        name="paid too",
        channel="email",
        timing={"type": "event", "trigger_event": "paid"},
        config={"subject": "other paid", "body": "b"},
    )
    flow.enroll(7)
    dd.enroll("other", {"type": "User", "id": 7}, data={"email": "u7@example.com"})
    flow.enroll(8)
    events = dd.track({"type": "User", "id": 7}, "paid", {"amount": 10})
    assert len(events) == 2 and all(ev.event_data == {"amount": 10} for ev in events)
    dd.run_due()
    assert sorted(m.payload["subject"] for m in outbox()) == ["other paid", "paid "]


def test_simulate_shows_the_timeline_without_keeping_anything(dd, flow):
    flow.step("welcome")
    vip = flow.step(
        "vip", channel="sms", timing={"type": "delay", "delay_amount": 2, "delay_unit": "days"}
    )
    dd.create_condition(vip.id, field_path="plan", operator="eq", expected_value="pro")
    flow.step(
        "paid",
        timing={
            "type": "event",
            "trigger_event": "paid",
            "timeout_amount": 5,
            "timeout_unit": "days",
        },
    )
    timeline = dd.simulate(
        "flow",
        data={"email": "a@x.io", "plan": "free"},
        events=[(timedelta(days=3), "paid", {})],
        until=timedelta(days=10),
    )
    kinds = [(e.step_key, e.kind) for e in timeline if e.step_key]
    assert kinds == [("welcome", "sent"), ("vip", "skipped"), ("paid", "sent")]
    assert timeline.final_state == "completed"
    assert outbox() == []
    assert dd.list_active_enrollments("flow") == []
    late = dd.simulate(
        "flow", data={"email": "a@x.io", "phone": "+1", "plan": "pro"}, until=timedelta(days=10)
    )
    assert [(e.step_key, e.kind) for e in late if e.step_key] == [
        ("welcome", "sent"),
        ("vip", "sent"),
        ("paid", "skipped"),
    ]
