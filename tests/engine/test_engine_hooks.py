"""Python hook modules: module or module:Class, sync or async, declined names, timeouts."""

from __future__ import annotations

from dripdrop.testing import outbox


def _sequence(dd, hook_module, **step):
    dd.create_channel_adapter(name="mem", channel="email", provider="memory")
    seq = dd.create_sequence(name="Hooks", key="hooks", hook_module=hook_module)
    v = dd.create_sequence_version(seq.id, active=True)
    s = dd.create_step(v.id, name="a", channel="email", **step)
    return s


def test_class_hook_value_in_a_template(dd):
    from class_hooks import CrmHooks

    _sequence(
        dd,
        "class_hooks:CrmHooks",
        config={"subject": "You are {{ tier }}{{ unknown }}", "body": "b"},
    )
    for i in range(3):
        dd.enroll("hooks", {"type": "User", "id": i}, data={"email": f"{i}@x.io"})
    dd.run_due()
    assert [m.payload["subject"] for m in outbox()] == ["You are gold"] * 3
    assert CrmHooks.instances == 1  # the class is instantiated once


def test_hook_error_tuple_fails_the_condition_step(dd):
    step = _sequence(dd, "class_hooks:CrmHooks", config={"subject": "s", "body": "b"})
    dd.create_condition(
        step.id, condition_type="hook", hook_function="broken", operator="eq", expected_value="x"
    )
    e = dd.enroll("hooks", {"type": "User", "id": 1}, data={"email": "1@x.io"})
    dd.run_due()
    [x] = dd.list_executions(e.id)
    assert x.state == "failed" and "no such customer" in x.error_message


def test_async_module_hook_sees_the_context(dd):
    _sequence(dd, "class_hooks", config={"subject": "{{ greeting }}", "body": "b"})
    dd.enroll("hooks", {"type": "User", "id": 1}, data={"email": "1@x.io", "name": "Ada"})
    dd.run_due()
    assert [m.payload["subject"] for m in outbox()] == ["Hello Ada (a)"]


def test_a_slow_hook_times_out_and_the_worker_carries_on(dd):
    dd.runtime.hook_timeout = 0.2  # DripDrop(hook_timeout=...) sets it at construction
    step = _sequence(dd, "class_hooks", config={"subject": "s", "body": "b"})
    dd.create_condition(
        step.id, condition_type="hook", hook_function="slow", operator="eq", expected_value="x"
    )
    e = dd.enroll("hooks", {"type": "User", "id": 1}, data={"email": "1@x.io"})
    summary = dd.run_due()
    assert summary.failed == 1
    [x] = dd.list_executions(e.id)
    assert "took longer than 0.2s" in x.error_message
