"""Helpers of the deliverability tests: a sequence with email and sms steps on memory adapters."""

from __future__ import annotations

from typing import Any

from dripdrop import DripDrop

PUBLIC_URL = "https://app.example.com/dripdrop"


def memory_adapters(dd: DripDrop, tenant_key: str | None = None) -> None:
    for channel in ("email", "sms"):
        dd.create_channel_adapter(
            name=f"mem-{channel}-{tenant_key}",
            channel=channel,
            provider="memory",
            is_default=True,
            tenant_key=tenant_key,
        )


def email_sequence(
    dd: DripDrop,
    key: str,
    *,
    steps: int = 2,
    category: str | None = None,
    tenant_key: str | None = None,
    channel: str = "email",
    body: str = "<p>Hi {{ name }}</p><a href='{{ unsubscribe_url }}'>unsubscribe</a>",
    to: str | None = None,
) -> Any:
    """An active sequence of ``steps`` immediate steps (each one day after the previous)."""
    seq = dd.create_sequence(name=key, key=key, category=category, tenant_key=tenant_key)
    version = dd.create_sequence_version(seq.id, active=True)
    for i in range(steps):
        config: dict[str, Any] = (
            {"subject": f"{key} {i}", "body": body, "from": "hello@example.com"}
            if channel == "email"
            else {"body": f"{key} {i}"}
        )
        if to is not None:
            config["to"] = to
        timing = (
            {"type": "immediate"}
            if i == 0
            else {"type": "delay", "delay_amount": i, "delay_unit": "days"}
        )
        dd.create_step(version.id, name=f"step {i}", channel=channel, config=config, timing=timing)
    return seq


def subscriber(n: Any) -> dict[str, Any]:
    return {"type": "User", "id": n}


def executions(dd: DripDrop, enrollment_id: Any) -> list[Any]:
    return sorted(dd.list_executions(enrollment_id), key=lambda x: x.inserted_at)
