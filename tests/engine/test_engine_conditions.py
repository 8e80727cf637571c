"""Conditions: data paths, operators and coercion, hooks, event counts, time windows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dripdrop.engine.conditions import compare, lookup, next_window_opening
from dripdrop.testing import outbox


@pytest.mark.parametrize(
    ("actual", "op", "expected", "result"),
    [
        ("enterprise", "eq", "enterprise", True),
        ("pro", "eq", "enterprise", False),
        (10, "eq", "10", True),
        ("10.0", "eq", "10", True),
        (True, "eq", "true", True),
        ("false", "eq", "False", True),
        (False, "neq", "true", True),
        (72, "gte", "70", True),
        ("69", "gte", "70", False),
        ("abc", "gt", "10", False),
        (5, "lt", "10", True),
        (10, "lte", "10", True),
        ("pro", "in", '["pro", "enterprise"]', True),
        ("free", "in", "pro, enterprise", False),
        (3, "in", "1,2,3", True),
        ("free", "not_in", "pro,enterprise", True),
        (["a", "b"], "contains", "b", True),
        ("hello world", "contains", "world", True),
        (None, "contains", "x", False),
        (None, "exists", None, False),
        (0, "exists", None, True),
        (None, "exists", "false", True),
    ],
)
def test_operators_coerce_numbers_and_booleans(actual, op, expected, result):
    assert compare(actual, op, expected) is result


def test_lookup_by_dot_path_and_jsonpath():
    data = {"address": {"country": "FR"}, "items": [{"sku": "a"}, {"sku": "b"}]}
    assert lookup(data, "address.country") == "FR"
    assert lookup(data, "items.1.sku") == "b"
    assert lookup(data, "$.address.country") == "FR"
    assert lookup(data, "$.items[*].sku") == ["a", "b"]
    assert lookup(data, "address.city") is None
    assert lookup(data, "$.nothing") is None


def test_time_window_inside_and_next_opening():
    cfg = {
        "timezone": "America/New_York",
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "17:00",
    }
    inside = datetime(2030, 1, 7, 15, 0, tzinfo=UTC)  # Monday 10:00 New York
    assert next_window_opening(cfg, {}, inside) is None
    friday_night = datetime(2030, 1, 12, 1, 0, tzinfo=UTC)  # Friday 20:00 New York
    assert next_window_opening(cfg, {}, friday_night) == datetime(2030, 1, 14, 14, 0, tzinfo=UTC)
    # The enrollment's own timezone wins when timezone_field names it.
    tokyo = {**cfg, "timezone_field": "tz"}
    assert next_window_opening(tokyo, {"tz": "Asia/Tokyo"}, inside) == datetime(
        2030, 1, 8, 0, 0, tzinfo=UTC
    )


def test_enrollment_data_condition_skips_and_moves_on(dd, flow):
    sms = flow.step("vip sms", channel="sms")
    dd.create_condition(sms.id, field_path="plan.tier", operator="eq", expected_value="enterprise")
    flow.step("after")
    flow.enroll(1, plan={"tier": "enterprise"})
    e2 = flow.enroll(2, plan={"tier": "free"})
    dd.run_due()
    assert [m.recipient for m in outbox("sms")] == ["+15550000000"]
    skipped = dd.list_executions(e2.id)[0]
    assert skipped.state == "skipped"
    assert "plan.tier" in skipped.error_message and "'free'" in skipped.error_message
    assert len(outbox("email")) == 2  # both moved on to "after"


def test_jsonpath_condition(dd, flow):
    step = flow.step("tagged")
    dd.create_condition(step.id, field_path="$.tags[0]", operator="eq", expected_value="beta")
    flow.enroll(1, tags=["beta", "x"])
    flow.enroll(2, tags=["stable"])
    dd.run_due()
    assert [m.recipient for m in outbox()] == ["u1@example.com"]


def test_hook_condition_and_hook_values_in_templates(dd, env):
    from engine_hooks import CALLS

    for ch in ("email",):
        dd.create_channel_adapter(name=f"m-{ch}", channel=ch, provider="memory")
    seq = dd.create_sequence(name="H", key="h", hook_module="engine_hooks")
    v = dd.create_sequence_version(seq.id, active=True)
    step = dd.create_step(
        v.id,
        name="reminder",
        channel="email",
        config={"subject": "{{ trial_days_remaining }} days left", "body": "hi {{ name }}"},
    )
    dd.create_condition(
        step.id,
        condition_type="hook",
        hook_function="setup_completed",
        operator="eq",
        expected_value="false",
    )
    CALLS.clear()
    done = dd.enroll(
        "h", {"type": "User", "id": 1}, data={"email": "a@x.io", "done": True, "name": "A"}
    )
    dd.enroll("h", {"type": "User", "id": 2}, data={"email": "b@x.io", "done": False, "name": "B"})
    dd.run_due()
    assert [m.payload["subject"] for m in outbox()] == ["3 days left"]
    # Only hooks a condition or template names are called, once per execution.
    assert sorted(CALLS) == ["setup_completed", "setup_completed", "trial_days_remaining"]
    sent = dd.list_executions(dd.get_enrollment("h", "User", 2).id)[0]
    assert sent.payload["hook_values"] == {"setup_completed": False, "trial_days_remaining": 3}
    assert dd.list_executions(done.id)[0].state == "skipped"


def test_a_raising_hook_fails_that_execution_only(dd):
    dd.create_channel_adapter(name="m", channel="email", provider="memory")
    seq = dd.create_sequence(name="H", key="h", hook_module="engine_hooks")
    v = dd.create_sequence_version(seq.id, active=True)
    bad = dd.create_step(v.id, name="bad", channel="email", config={"subject": "s", "body": "b"})
    dd.create_condition(
        bad.id, condition_type="hook", hook_function="explode", operator="eq", expected_value="x"
    )
    dd.create_step(v.id, name="next", channel="email", config={"subject": "next", "body": "b"})
    e = dd.enroll("h", {"type": "User", "id": 1}, data={"email": "a@x.io"})
    summary = dd.run_due()
    assert summary.failed == 1 and summary.sent == 1
    failed = dd.list_executions(e.id)[0]
    assert failed.state == "failed"
    assert "explode" in failed.error_message and "the CRM is down" in failed.error_message


def test_event_count_condition(dd, flow, env):
    flow.step("first")
    step = flow.step(
        "power user", timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"}
    )
    dd.create_condition(
        step.id,
        condition_type="event",
        config={"event_key": "login"},
        operator="gte",
        expected_value="2",
    )
    e1 = flow.enroll(1)
    e2 = flow.enroll(2)
    dd.track_event(e1.id, "login")
    dd.track_event(e1.id, "login")
    dd.track_event(e2.id, "login")
    env.advance_and_run(days=1)
    assert [m.recipient for m in outbox() if m.payload["subject"].startswith("power")] == [
        "u1@example.com"
    ]


def test_time_window_defers_instead_of_skipping(dd, flow, env, clock):
    # 09:00 UTC Monday is 04:00 in New York: outside a 09:00-17:00 window.
    step = flow.step("business hours")
    dd.create_condition(
        step.id,
        condition_type="time_window",
        config={
            "timezone": "America/New_York",
            "days": ["mon", "tue"],
            "start": "09:00",
            "end": "17:00",
        },
    )
    e = flow.enroll()
    summary = dd.run_due()
    assert summary.deferred == 1 and outbox() == []
    deferred = dd.list_executions(e.id)[0]
    assert deferred.state == "scheduled"
    assert deferred.scheduled_for.isoformat() == "2030-01-07T14:00:00+00:00"
    env.advance_and_run(hours=5)
    assert len(outbox()) == 1
