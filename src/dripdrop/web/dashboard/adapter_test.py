"""Sending one test message through a stored adapter, as the worker would deliver it (the
guarded HTTP client, the adapter's decrypted credentials, errors scrubbed of its secrets)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from dripdrop.channels.base import AdapterInfo, DeliveryContext, Message
from dripdrop.errors import DripDropError


@dataclass(frozen=True)
class TestOutcome:
    ok: bool
    status: str
    response: Any = None
    error: str | None = None


def _fields(channel: str, recipient: str, text: str) -> dict[str, Any]:
    subject = "DripDrop test message"
    by_channel: dict[str, dict[str, Any]] = {
        "email": {"to": recipient, "subject": subject, "body": f"<p>{text}</p>", "text": text},
        "sms": {"to": recipient, "body": text},
        "webhook": {"body": {"test": True, "text": text}},
        "pubsub": {
            "topic": recipient or "dripdrop.test",
            "event": "test",
            "payload": {"text": text},
        },
        "slack": {"text": text},
        "telegram": {"chat_id": recipient, "text": text},
        "discord": {"content": text},
        "msteams": {"title": subject, "text": text},
        "apprise": {"title": subject, "body": text},
    }
    return by_channel.get(channel, {"body": text})


def send_test(rt: Any, adapter: Any, recipient: str, text: str) -> TestOutcome:
    """Deliver one test message now (blocking: run it on a worker thread)."""
    from dripdrop.engine.process import deliver
    from dripdrop.net import create_http_client

    info = AdapterInfo(
        id=str(adapter.id),
        name=adapter.name,
        channel=adapter.channel,
        provider=adapter.provider,
        credentials=adapter.credentials.reveal(),
        config=adapter.config,
    )
    message = Message(
        channel=adapter.channel,
        recipient=recipient or None,
        fields=_fields(adapter.channel, recipient, text),
        execution_id=f"test-{uuid.uuid4()}",
        idempotency_key=f"dashboard-test-{uuid.uuid4()}",
    )

    async def go() -> TestOutcome:
        http = create_http_client(rt.policy)
        ctx = DeliveryContext(
            http=http, outbox=rt.outbox, clock=rt.clock, extras={"bus": rt.bus, "schema": rt.schema}
        )
        try:
            result = await deliver(message, info, ctx)
        except DripDropError as exc:  # scrubbed of the adapter's secrets by deliver()
            return TestOutcome(False, "failed", error=str(exc))
        except Exception as exc:  # its text might quote a credential: only its kind is shown
            return TestOutcome(False, "failed", error=f"unexpected {type(exc).__name__}")
        finally:
            await http.aclose()
        return TestOutcome(True, result.status, response=result.response)

    return asyncio.run(go())
