"""Shared by the analytics tests: a test provider that takes a set time to answer, a sequence
with sends, skips, retries and failures, and the ground truth read from the base tables."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from sqlalchemy import text

from dripdrop.channels import (
    AdapterInfo,
    DeliveryContext,
    DeliveryResult,
    Fields,
    Message,
    ProviderSpec,
    register,
)


class _SleepyConfig(Fields):
    delay: float | None = None


class SleepyProvider:
    """Answers after ``config.delay`` seconds (a provider with a known latency)."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        # At least ``delay``: uvloop fires a timer up to a millisecond early (its clock counts
        # whole milliseconds), which made a 30 ms provider measure 29 ms now and then.
        until = time.perf_counter() + float(adapter.config.get("delay") or 0)
        while (left := until - time.perf_counter()) > 0:
            await asyncio.sleep(left)
        return DeliveryResult(provider_message_id=message.idempotency_key, status="sent")


register(ProviderSpec("email", "analytics_sleepy", Fields, _SleepyConfig, SleepyProvider, "Sleeps"))


def sql(dd: Any, statement: str, **params: Any) -> list[Any]:
    """Run SQL on ``dd``'s schema (``{s}`` is the quoted schema name); rows when any."""
    with dd.runtime.engine.begin() as conn:
        result = conn.execute(text(statement.format(s=f'"{dd.schema}"')), params)
        return result.all() if result.returns_rows else []


def mixed_sequence(dd: Any, key: str = "mix", tenant_key: str | None = None) -> dict[str, Any]:
    """Three steps: ``welcome`` (memory: sent), ``pro_only`` (skipped unless plan is pro) and
    ``flaky`` through a provider that always fails transiently (2 retries, then failed)."""
    seq = dd.create_sequence(name=key, key=key, tenant_key=tenant_key)
    version = dd.create_sequence_version(seq.id, active=True)
    ok = dd.create_channel_adapter(
        name=f"ok-{key}", channel="email", provider="memory", tenant_key=tenant_key
    )
    bad = dd.create_channel_adapter(
        name=f"bad-{key}",
        channel="email",
        provider="memory",
        config={"fail": "transient"},
        tenant_key=tenant_key,
    )
    body = {"subject": "Hi", "body": "b"}
    welcome = dd.create_step(
        version.id, name="welcome", channel="email", config=body, channel_adapter_id=ok.id
    )
    pro = dd.create_step(
        version.id, name="pro_only", channel="email", config=body, channel_adapter_id=ok.id
    )
    dd.create_condition(pro.id, field_path="plan", operator="eq", expected_value="pro")
    flaky = dd.create_step(
        version.id,
        name="flaky",
        channel="email",
        config={**body, "max_retries": 2},
        channel_adapter_id=bad.id,
    )
    return {
        "seq": seq,
        "version": version,
        "ok": ok,
        "bad": bad,
        "steps": [welcome, pro, flaky],
    }


def truth(dd: Any, version_id: Any) -> dict[str, Counter[str]]:
    """Per step key: executions by state, and retries (the sum of retry counts) — read from
    ``step_executions`` itself, which the analytics must never do."""
    out: dict[str, Counter[str]] = {}
    for r in sql(
        dd,
        "SELECT st.key, x.state, count(*) AS n, sum(x.retry_count) AS retries "
        "FROM {s}.step_executions x JOIN {s}.steps st ON st.id = x.step_id "
        "WHERE st.sequence_version_id = :v GROUP BY 1, 2",
        v=version_id,
    ):
        c = out.setdefault(r.key, Counter())
        c[r.state] += r.n
        c["retried"] += int(r.retries)
    return out
