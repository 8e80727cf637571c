"""A batch's in-process deliveries run inline; network-bound ones concurrently."""

from __future__ import annotations

import asyncio
import time

from dripdrop.channels import DeliveryResult, Fields, ProviderSpec, register
from dripdrop.worker import eager

ACTIVE: list[int] = []
PEAK: list[int] = []


class Sleepy:
    async def send(self, message, adapter, ctx):
        ACTIVE.append(1)
        PEAK.append(len(ACTIVE))
        await asyncio.sleep(0.2)
        ACTIVE.pop()
        return DeliveryResult(status="sent")


register(ProviderSpec("sms", "sleepy_test", Fields, Fields, Sleepy))


def test_network_providers_run_concurrently_and_memory_ones_inline(dd, monkeypatch):
    dd.create_channel_adapter(name="mem", channel="email", provider="memory")
    dd.create_channel_adapter(name="sleepy", channel="sms", provider="sleepy_test")
    seq = dd.create_sequence(name="F", key="f")
    v = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(v.id, name="mail", channel="email", config={"subject": "s", "body": "b"})
    dd.create_step(v.id, name="text", channel="sms", config={"body": "b"})
    for i in range(20):
        dd.enroll("f", {"type": "User", "id": i}, data={"email": f"{i}@x.io", "phone": "+1"})
    inline_flags = []
    original = eager.runs_in_process
    monkeypatch.setattr(
        eager,
        "runs_in_process",
        lambda job: inline_flags.append((job.step.channel, original(job))) or original(job),
    )
    started = time.monotonic()
    summary = dd.run_due()
    assert summary.sent == 40
    assert time.monotonic() - started < 2.5  # 20 x 0.2 s would take 4 s one after the other
    assert max(PEAK) > 1
    assert {flag for channel, flag in inline_flags if channel == "email"} == {True}
    assert {flag for channel, flag in inline_flags if channel == "sms"} == {False}
