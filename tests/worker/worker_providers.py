"""Test providers for the worker tests, registered on import (by the tests and by worker
subprocesses alike, since adapters are validated against the registry).

- ``email/slow``: sleeps ``config.delay`` seconds (default 2), then delivers to the outbox.
- ``email/flaky``: per execution, raises ``config.transient`` TransientErrors (with
  ``config.retry_after`` when set) before succeeding, or a PermanentError when
  ``config.permanent`` is set.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from dripdrop.channels import (
    AdapterInfo,
    DeliveryContext,
    DeliveryResult,
    Fields,
    Message,
    ProviderSpec,
    register,
)
from dripdrop.channels.providers.dev import DEFAULT_OUTBOX, SentMessage
from dripdrop.errors import PermanentError, TransientError

#: Delivery attempts per execution id (in this process).
ATTEMPTS: Counter[str] = Counter()


def _keep(message: Message, adapter: AdapterInfo, ctx: DeliveryContext, provider: str) -> None:
    outbox = ctx.outbox if ctx.outbox is not None else DEFAULT_OUTBOX
    outbox.append(
        SentMessage(
            channel=message.channel,
            recipient=message.recipient,
            payload=message.fields,
            execution_id=message.execution_id,
            idempotency_key=message.idempotency_key,
            adapter=adapter.name,
            provider=provider,
            metadata=message.metadata,
            sent_at=ctx.clock() if ctx.clock else None,
        )
    )


class SlowProvider:
    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        ATTEMPTS[message.execution_id] += 1
        await asyncio.sleep(float(adapter.config.get("delay", 2.0)))
        _keep(message, adapter, ctx, "slow")
        return DeliveryResult(provider_message_id=message.idempotency_key, status="sent")


class FlakyProvider:
    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        ATTEMPTS[message.execution_id] += 1
        config: dict[str, Any] = adapter.config
        if config.get("permanent"):
            raise PermanentError(str(config["permanent"]))
        if ATTEMPTS[message.execution_id] <= int(config.get("transient", 0)):
            raise TransientError("provider busy", retry_after=config.get("retry_after"))
        _keep(message, adapter, ctx, "flaky")
        return DeliveryResult(provider_message_id=message.idempotency_key, status="sent")


class _Config(Fields):
    delay: float | None = None
    transient: int | None = None
    retry_after: float | None = None
    permanent: str | None = None


register(ProviderSpec("email", "slow", Fields, _Config, SlowProvider, "Sleeps, then delivers"))
register(ProviderSpec("email", "flaky", Fields, _Config, FlakyProvider, "Fails, then delivers"))
