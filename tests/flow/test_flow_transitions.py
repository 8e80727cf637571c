"""Transitions: first match by priority decides, None completes, no match falls through; every
condition type on transitions; a loop without a wait is refused; targets stay in the version."""

from __future__ import annotations

import pytest
from flow_support import sent, trail

from dripdrop import ValidationError


def test_first_holding_transition_by_priority_decides(dd, flow):
    a, _b, c, d = (flow.step(k) for k in "abcd")
    low = flow.edge(a, d, priority=1, mode="all")
    dd.create_condition(
        transition_id=low.id, field_path="plan", operator="eq", expected_value="pro"
    )
    high = flow.edge(a, c, priority=5, mode="all")
    dd.create_condition(
        transition_id=high.id, field_path="plan", operator="neq", expected_value="x"
    )
    pro = flow.enroll(1, plan="pro")
    free = flow.enroll(2, plan="free")
    dd.run_due()
    assert trail(dd, pro) == [("a", "sent"), ("d", "sent")]
    assert trail(dd, free) == [("a", "sent"), ("c", "sent"), ("d", "sent")]
    assert dd.get_enrollment_by_id(pro.id).state == "completed"


def test_no_transition_holding_goes_to_the_next_position(dd, flow):
    a, _b, _c = (flow.step(k) for k in "abc")
    t = flow.edge(a, None, mode="any")
    dd.create_condition(
        transition_id=t.id,
        condition_type="event",
        config={"event_key": "paid"},
        operator="gte",
        expected_value="1",
    )
    e = flow.enroll()
    dd.run_due()
    assert [k for k, _ in trail(dd, e)] == ["a", "b", "c"]


def test_a_transition_to_none_completes_with_its_reason(dd, flow, env):
    a = flow.step("a", timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"})
    flow.step("b")
    t = flow.edge(a, None, mode="all")
    dd.create_condition(
        transition_id=t.id,
        condition_type="event",
        config={"event_key": "paid"},
        operator="gte",
        expected_value="1",
    )
    e = flow.enroll()
    dd.track_event(e.id, "paid")
    env.advance_and_run(days=1)
    assert trail(dd, e) == [("a", "sent")]
    done = dd.get_enrollment_by_id(e.id)
    assert (done.state, done.exit_reason) == ("completed", "transition")


def test_a_skipped_step_is_finished_too_and_its_transitions_apply(dd, flow):
    a = flow.step("a")
    dd.create_condition(a.id, field_path="vip", operator="eq", expected_value="true")
    flow.step("b")
    c = flow.step("c")
    flow.edge(a, c)
    e = flow.enroll(vip=False)
    dd.run_due()
    assert trail(dd, e) == [("a", "skipped"), ("c", "sent")]


def test_time_window_and_throttle_conditions_work_on_transitions(dd, flow, clock):
    a, _b, c = (flow.step(k) for k in "abc")
    t = flow.edge(a, c, mode="all")
    # A window that is never open at the fake clock's hour (12:00 UTC) vs always open.
    hour = clock().hour
    dd.create_condition(
        transition_id=t.id,
        condition_type="time_window",
        config={
            "timezone": "UTC",
            "start": f"{(hour + 2) % 24:02d}:00",
            "end": f"{(hour + 3) % 24:02d}:00",
        },
    )
    e = flow.enroll()
    dd.run_due()
    assert [k for k, _ in trail(dd, e)] == ["a", "b", "c"]  # closed window: fall through


def test_a_loop_without_a_wait_is_refused(dd, flow):
    a, b = flow.step("a"), flow.step("b")
    with pytest.raises(ValidationError) as info:
        flow.edge(b, a)
    assert "to_step_id" in info.value.errors
    assert "a → b → a" in info.value.errors["to_step_id"][0]
    # The same loop through a delay relative to the previous step is accepted.
    w = flow.step(
        "wait",
        timing={
            "type": "delay",
            "delay_amount": 1,
            "delay_unit": "days",
            "relative_to": "previous_step",
        },
    )
    flow.edge(w, a)
    assert len(dd.list_transitions(flow.version.id)) == 1


def test_a_delay_from_enrollment_start_is_no_wait_in_a_loop(dd, flow):
    a = flow.step("a", timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"})
    b = flow.step("b")
    with pytest.raises(ValidationError, match="passes no delay"):
        flow.edge(b, a)


def test_targets_stay_in_the_version(dd, flow):
    a = flow.step("a")
    other = dd.create_sequence_version(flow.seq.id)
    x = dd.create_step(other.id, name="x", channel="email", config={"subject": "x", "body": "x"})
    with pytest.raises(ValidationError) as info:
        flow.edge(a, x)
    assert "to_step_id" in info.value.errors
    with pytest.raises(ValidationError) as info:
        dd.create_transition(flow.version.id, from_step_id=a.id, condition_mode="sometimes")
    assert "condition_mode" in info.value.errors


def test_activation_refuses_unreachable_steps(dd, flow):
    v2 = dd.create_sequence_version(flow.seq.id)

    def mk(k):
        return dd.create_step(
            v2.id,
            name=k,
            channel="email",
            config={"subject": k, "body": k},
        )

    a, _b, c = mk("a"), mk("b"), mk("c")
    dd.create_transition(v2.id, from_step_id=a.id, to_step_id=c.id)
    with pytest.raises(ValidationError) as info:
        dd.activate_version(v2.id)
    assert "steps.b.position" in info.value.errors


def test_a_loop_through_an_event_step_waits_for_a_new_event(dd, flow, env):
    ask = flow.step("ask")
    wait = flow.step(
        "wait",
        timing={
            "type": "event",
            "trigger_event": "reply",
            "timeout_amount": 2,
            "timeout_unit": "days",
        },
    )
    again = flow.step("again")
    back = flow.edge(again, ask, mode="all")
    dd.create_condition(
        transition_id=back.id,
        condition_type="event",
        config={"event_key": "reply"},
        operator="lt",
        expected_value="2",
    )
    e = flow.enroll()
    dd.run_due()
    dd.track_event(e.id, "reply")
    env.advance_and_run(minutes=1)
    # ask, wait (woken), again → back to ask (1 reply < 2), then wait waits for a *new* reply.
    assert sent() == ["ask", "wait", "again", "ask"]
    env.advance_and_run(hours=1)
    assert sent().count("ask") == 2
    dd.track_event(e.id, "reply")
    env.advance_and_run(minutes=1)
    assert dd.get_enrollment_by_id(e.id).state == "completed"
    assert sent() == ["ask", "wait", "again", "ask", "wait", "again"]
    assert [x.state for x in dd.list_executions(e.id) if x.step_id == wait.id] == ["sent"] * 2
