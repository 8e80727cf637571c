"""Pub/sub providers: ``postgres`` (inbox + NOTIFY), ``redis`` (PUBLISH) and ``local``
(in-process subscribers)."""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any, ClassVar

from dripdrop.channels.base import (
    AdapterInfo,
    DeliveryContext,
    DeliveryResult,
    Fields,
    Message,
    ProviderSpec,
)
from dripdrop.channels.registry import register
from dripdrop.errors import PermanentError, TransientError, require_extra


def _parts(message: Message) -> tuple[str, str | None, Any]:
    topic = message.fields.get("topic") or message.recipient
    if not topic:
        raise PermanentError("pubsub step has no topic")
    return str(topic), message.fields.get("event"), message.fields.get("payload")


class PostgresPubSub:
    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        topic, event, payload = _parts(message)
        if ctx.publish is None:
            raise PermanentError("postgres pubsub needs the worker's database access")
        note = await ctx.publish(topic, event, payload, message, adapter)
        return DeliveryResult(
            provider_message_id=str(getattr(note, "id", "")) or None,
            status="published",
            response={"topic": topic},
        )


class LocalPubSub:
    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        topic, event, payload = _parts(message)
        bus = ctx.extras.get("bus")
        delivered = 0
        for callback in bus.subscribers(topic) if bus else []:
            try:
                result = callback(topic, event, payload)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # a subscriber's bug fails this delivery, not the worker
                raise PermanentError(
                    f"local subscriber raised {type(exc).__name__}: {exc}"
                ) from exc
            delivered += 1
        return DeliveryResult(
            status="published", response={"topic": topic, "subscribers": delivered}
        )


class RedisPubSub:
    """PUBLISH ``{"event", "payload"}`` as JSON on ``{prefix}{topic}``."""

    # Clients per event loop and URL (a client is bound to the loop it was created in). Every sync
    # ``run_due`` has its own loop: the clients of closed loops are forgotten, so the garbage
    # collector closes their sockets, instead of one connection piling up per run.
    _clients: ClassVar[dict[asyncio.AbstractEventLoop, dict[str, Any]]] = {}

    @classmethod
    def _client(cls, redis: Any, url: str) -> Any:
        for loop in [loop for loop in cls._clients if loop.is_closed()]:
            del cls._clients[loop]
        clients = cls._clients.setdefault(asyncio.get_running_loop(), {})
        client = clients.get(url)
        if client is None:
            client = clients[url] = redis.from_url(url)
        return client

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        redis = require_extra("redis.asyncio", "redis")
        topic, event, payload = _parts(message)
        url = adapter.credentials.get("url") or adapter.config.get("url")
        if not url:
            raise PermanentError("redis pubsub adapter has no url (credentials.url or config.url)")
        client = self._client(redis, url)
        channel = f"{adapter.config.get('prefix', '')}{topic}"
        body = json.dumps(
            {"event": event, "payload": payload, "idempotency_key": message.idempotency_key},
            default=str,
        )
        try:
            receivers = await client.publish(channel, body)
        except (OSError, redis.ConnectionError, redis.TimeoutError) as exc:
            raise TransientError(f"redis publish failed: {exc}") from exc
        return DeliveryResult(
            status="published", response={"channel": channel, "receivers": receivers}
        )


class _RedisCreds(Fields):
    url: str | None = None


class _RedisConfig(Fields):
    url: str | None = None
    prefix: str = ""


register(
    ProviderSpec(
        "pubsub",
        "postgres",
        Fields,
        Fields,
        PostgresPubSub,
        "In-app inbox (notifications table) + PostgreSQL NOTIFY",
    )
)
register(
    ProviderSpec(
        "pubsub", "local", Fields, Fields, LocalPubSub, "In-process subscribers (dd.subscribe)"
    )
)
register(
    ProviderSpec(
        "pubsub",
        "redis",
        _RedisCreds,
        _RedisConfig,
        RedisPubSub,
        "Redis PUBLISH",
        secret_fields=("url",),
        extra="redis",
    )
)
