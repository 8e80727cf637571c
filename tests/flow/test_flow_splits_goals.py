"""Splits (weights, stickiness, holdout, counts), goals with conversion attribution, and the exit
reason recorded on every ended enrollment."""

from __future__ import annotations

import pytest
from flow_support import Flow, sent, trail

from dripdrop import ValidationError


def ab_split(dd, flow, holdout=None):
    split = {
        "branches": [{"name": "A", "weight": 60, "to": "a"}, {"name": "B", "weight": 30, "to": "b"}]
    }
    if holdout:
        split["holdout"] = holdout
    s = flow.step("ab", channel="split", config={"split": split})
    a, b = flow.step("a"), flow.step("b")
    flow.edge(a, None)  # A's path ends after a; B's after b
    return s, a, b


def test_an_ab_split_of_10000_enrollments_follows_its_weights(dd, flow):
    s, _a, _b = ab_split(dd, flow, holdout=10)
    n = 10_000
    assert (
        dd.enroll_many(
            "flow",
            [
                {"subscriber": {"type": "User", "id": i}, "data": {"email": f"u{i}@x.io"}}
                for i in range(n)
            ],
        )
        == n
    )
    dd.run_due()
    counts = {c.branch: c.count for c in dd.split_counts(s.id)}
    assert sum(counts.values()) == n
    for branch, weight in (("A", 0.6), ("B", 0.3), ("holdout", 0.1)):
        assert abs(counts[branch] / n - weight) <= 0.02, (branch, counts)
    # Only the A and B groups received anything, each exactly its own message.
    assert sent().count("a") == counts["A"] and sent().count("b") == counts["B"]
    held = [e for e in dd.list_active_enrollments("flow")]
    assert held == []


def test_a_split_is_sticky_and_recorded_on_the_execution(dd, flow):
    s, _a, _b = ab_split(dd, flow)
    first = {}
    for i in range(20):
        e = flow.enroll(i)
        dd.run_due()
        (x,) = [x for x in dd.list_executions(e.id) if x.step_id == s.id]
        first[i] = x.branch
        assert x.state == "skipped" and x.branch in ("A", "B") and "split" in x.error_message
    for i in range(20):  # a restart (same enrollment) takes the same branch again
        dd.enroll(
            "flow", {"type": "User", "id": i}, data={"email": "x@x.io"}, on_conflict="restart"
        )
    dd.run_due()
    for i in range(20):
        e = dd.get_enrollment("flow", "User", i)
        branches = [x.branch for x in dd.list_executions(e.id) if x.branch]
        assert branches == [first[i]] * 2  # the first run and the re-run
    assert len(set(first.values())) == 2


def test_the_holdout_receives_nothing_and_is_marked(dd, flow):
    s = flow.step(
        "ab",
        channel="split",
        config={"split": {"branches": [{"name": "A", "weight": 1}], "holdout": 1_000_000}},
    )
    flow.step("a")
    e = flow.enroll()
    dd.run_due()
    done = dd.get_enrollment_by_id(e.id)
    assert (done.state, done.exit_reason) == ("completed", "holdout")
    assert sent() == [] and trail(dd, e) == [("ab", "skipped")]
    assert [(c.branch, c.count) for c in dd.split_counts(s.id)] == [("holdout", 1)]


def test_split_definitions_are_checked(dd, flow):
    with pytest.raises(ValidationError) as info:
        flow.step(
            "bad",
            channel="split",
            config={
                "split": {
                    "branches": [{"name": "A", "weight": 0}, {"name": "A", "weight": 1, "to": 5}]
                }
            },
        )
    errors = info.value.errors
    assert {
        "config.split.branches[0].weight",
        "config.split.branches[1].name",
        "config.split.branches[1].to",
    } <= set(errors)
    with pytest.raises(ValidationError) as info:
        flow.step("bad2", config={"subject": "s", "body": "b", "split": {}})
    assert "config.split" in info.value.errors
    # A branch to a step that does not exist is refused at activation.
    v2 = dd.create_sequence_version(flow.seq.id)
    dd.create_step(
        v2.id,
        name="s",
        channel="split",
        config={"split": {"branches": [{"name": "A", "weight": 1, "to": "nope"}]}},
    )
    with pytest.raises(ValidationError) as info:
        dd.activate_version(v2.id)
    assert "steps.s.config.split.branches[0].to" in info.value.errors


def goal_flow(dd, **goal):
    for channel in ("email",):
        dd.create_channel_adapter(name=f"m-{channel}", channel=channel, provider="memory")
    flow = Flow(dd, "goal", config={"goal": {"event_key": "order_completed", **goal}})
    a = flow.step("a")
    flow.step("b", timing={"type": "delay", "delay_amount": 2, "delay_unit": "days"})
    return flow, a


def test_a_goal_converts_ends_and_credits_the_last_step_sent(dd, env):
    flow, a = goal_flow(dd, trigger_data={"plan": "pro"})
    e = flow.enroll()
    dd.run_due()
    dd.track(
        subscriber={"type": "User", "id": 1},
        event_key="order_completed",
        event_data={"plan": "free"},
    )
    assert dd.get_enrollment_by_id(e.id).converted_at is None
    dd.track(
        subscriber={"type": "User", "id": 1},
        event_key="order_completed",
        event_data={"plan": "pro", "total": 10},
    )
    done = dd.get_enrollment_by_id(e.id)
    assert (done.state, done.exit_reason) == ("completed", "goal")
    assert done.converted_at == env.clock() and done.conversion_step_id == a.id
    env.advance_and_run(days=3)
    assert sent() == ["a"]
    assert trail(dd, e) == [("a", "sent"), ("b", "cancelled")]


def test_a_goal_may_let_the_enrollment_continue(dd, env):
    flow, a = goal_flow(dd, **{"continue": True})
    e = flow.enroll()
    dd.run_due()
    dd.track_event(e.id, "order_completed")
    converted = dd.get_enrollment_by_id(e.id)
    assert converted.state == "active" and converted.conversion_step_id == a.id
    env.advance_and_run(days=2)
    done = dd.get_enrollment_by_id(e.id)
    assert sent() == ["a", "b"] and (done.state, done.exit_reason) == ("completed", "completed")
    assert done.converted_at == converted.converted_at


def test_goal_config_is_checked(dd):
    seq = dd.create_sequence(name="G", key="g")
    with pytest.raises(ValidationError) as info:
        dd.create_sequence_version(seq.id, config={"goal": {"trigger_data": 3, "continue": "y"}})
    assert {"config.goal.event_key", "config.goal.trigger_data", "config.goal.continue"} <= set(
        info.value.errors
    )


def test_every_ended_enrollment_says_why(dd, flow, env):
    flow.version = dd.update_sequence_version(flow.version.id, config={"exit_events": ["stop"]})
    a = flow.step("a")
    # No telegram adapter: b fails for good and halts.
    flow.step(
        "b",
        channel="telegram",
        config={"text": "b", "on_failure": "halt"},
        timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"},
    )
    e1, e2, e3, e4 = (flow.enroll(i) for i in range(1, 5))
    dd.run_due()
    dd.unenroll("flow", "User", 1)
    dd.track_event(e2.id, "stop")
    env.advance_and_run(days=1)  # e3, e4: b fails and halts
    reasons = {e.id: dd.get_enrollment_by_id(e.id).exit_reason for e in (e1, e2, e3, e4)}
    assert reasons[e1.id] == "unenrolled" and reasons[e2.id] == "exit_event"
    assert reasons[e3.id] == "halted" and reasons[e4.id] == "halted"
    assert a is not None
