"""The development providers every channel has: ``memory`` (kept in process) and ``console``."""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dripdrop.channels.base import (
    CHANNELS,
    AdapterInfo,
    DeliveryContext,
    DeliveryResult,
    Fields,
    Message,
    ProviderSpec,
)
from dripdrop.channels.registry import register


@dataclass(frozen=True)
class SentMessage:
    """One delivery kept by the ``memory`` provider."""

    channel: str
    recipient: str | None
    payload: dict[str, Any]
    execution_id: str
    idempotency_key: str
    adapter: str
    provider: str
    metadata: dict[str, Any] = field(default_factory=dict)
    sent_at: datetime | None = None


class Outbox:
    """A thread-safe list of memory deliveries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[SentMessage] = []

    def append(self, item: SentMessage) -> None:
        with self._lock:
            self._items.append(item)

    def all(self, channel: str | None = None) -> list[SentMessage]:
        with self._lock:
            return [m for m in self._items if channel is None or m.channel == channel]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


#: The process-wide outbox used when a delivery context brings none.
DEFAULT_OUTBOX = Outbox()


class MemoryProvider:
    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        if adapter.config.get("fail"):
            from dripdrop.errors import PermanentError, TransientError

            kind = adapter.config["fail"]
            err = TransientError if kind == "transient" else PermanentError
            raise err(f"memory provider configured to fail ({kind})")
        outbox = ctx.outbox if ctx.outbox is not None else DEFAULT_OUTBOX
        outbox.append(
            SentMessage(
                channel=message.channel,
                recipient=message.recipient,
                payload=message.fields,
                execution_id=message.execution_id,
                idempotency_key=message.idempotency_key,
                adapter=adapter.name,
                provider="memory",
                metadata=message.metadata,
                sent_at=ctx.clock() if ctx.clock else None,
            )
        )
        return DeliveryResult(provider_message_id=message.idempotency_key, status="sent")


class ConsoleProvider:
    """Prints one readable line per delivery; long HTML bodies are shown as a text excerpt."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        stream = adapter.config.get("stream")
        out = sys.stderr if stream == "stderr" else sys.stdout
        when = ctx.clock().strftime("%Y-%m-%d %H:%M") if ctx.clock else ""
        shown = {k: _excerpt(v) for k, v in message.fields.items() if v not in (None, "", {}, [])}
        print(
            f"[{when}] {message.channel} → {message.recipient or '-'}: "
            f"{json.dumps(shown, default=str, ensure_ascii=False)}",
            file=out,
        )
        return DeliveryResult(provider_message_id=message.idempotency_key, status="printed")


def _excerpt(value: Any, limit: int = 160) -> Any:
    if not isinstance(value, str) or len(value) <= limit:
        return value
    if "<" in value:
        from dripdrop.channels.emailfmt import html_to_text

        value = " ".join(html_to_text(value).split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


class _DevCredentials(Fields):
    # Stand-ins for any real provider (tests put a real provider's credentials here).
    open_keys = True


class _DevConfig(Fields):
    fail: str | None = None
    stream: str | None = None


for _channel in CHANNELS:
    register(
        ProviderSpec(
            _channel,
            "memory",
            _DevCredentials,
            _DevConfig,
            MemoryProvider,
            "Keeps deliveries in process (tests)",
            in_process=True,
        )
    )
    register(
        ProviderSpec(
            _channel,
            "console",
            _DevCredentials,
            _DevConfig,
            ConsoleProvider,
            "Prints deliveries (development)",
            in_process=True,
        )
    )
