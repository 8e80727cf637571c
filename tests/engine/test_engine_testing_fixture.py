"""The pytest fixture users get from dripdrop.testing (auto-registered plugin)."""

from __future__ import annotations


def test_dripdrop_env_time_travel(dripdrop_env):
    dd = dripdrop_env.dd
    dd.create_channel_adapter(name="mem", channel="email", provider="memory")
    seq = dd.create_sequence(name="T", key="t")
    v = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(v.id, name="hi", channel="email", config={"subject": "hi", "body": "b"})
    dd.create_step(
        v.id,
        name="day3",
        channel="email",
        timing={"type": "delay", "delay_amount": 3, "delay_unit": "days"},
        config={"subject": "day 3", "body": "b"},
    )
    dd.enroll("t", {"type": "User", "id": 1}, data={"email": "a@x.io"})
    assert dd.run_due().sent == 1
    assert dripdrop_env.advance_and_run(days=2).sent == 0
    assert dripdrop_env.advance_and_run(days=1).sent == 1
    assert [m.payload["subject"] for m in dripdrop_env.outbox("email")] == ["hi", "day 3"]
