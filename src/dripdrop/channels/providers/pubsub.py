"""Pub/sub providers: ``postgres`` (inbox + NOTIFY), ``redis`` (PUBLISH) and ``local``
(in-process subscribers)."""

from __future__ import annotations

import asyncio
import inspect
import json
import ssl
from typing import Any, ClassVar

from dripdrop.channels.base import (
    AdapterInfo,
    DeliveryContext,
    DeliveryResult,
    Fields,
    Message,
    ProviderSpec,
)
from dripdrop.channels.http import Secrets
from dripdrop.channels.registry import register
from dripdrop.errors import OutboundBlocked, PermanentError, TransientError, require_extra
from dripdrop.net import OutboundPolicy, connect_guarded, policy_of, tls_server_name


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


_guarded_classes: dict[tuple[type, OutboundPolicy], type] = {}


def _guarded_connection_class(base: type, policy: OutboundPolicy) -> type:
    """``base`` (redis' TCP or TLS connection) connecting only through the outbound guard.

    Every new connection resolves the host once, vets every address (OutboundBlocked) and
    hands asyncio a socket connected to a vetted IP; TLS keeps the hostname for SNI and
    certificate checks. Reconnects of a pooled client are vetted again.
    """
    cls = _guarded_classes.get((base, policy))
    if cls is not None:
        return cls

    class GuardedConnection(base):  # type: ignore[misc, valid-type]
        _vetted: Any = None  # the socket _connect prepared for _connection_arguments

        async def _connect(self) -> None:
            self._vetted = await connect_guarded(
                self.host, self.port, policy, timeout=self.socket_connect_timeout
            )
            try:
                await super()._connect()
            except BaseException:
                self._vetted.close()
                raise
            finally:
                self._vetted = None

        def _connection_arguments(self) -> Any:
            if self._vetted is None:  # never let redis connect by name on its own
                raise OutboundBlocked(f"redis connection to {self.host!r} was not vetted")
            args = dict(super()._connection_arguments())
            host = args.pop("host")
            args.pop("port", None)
            if args.get("ssl") is not None:
                args["server_hostname"] = tls_server_name(host)
            return {**args, "sock": self._vetted}

    cls = _guarded_classes[(base, policy)] = GuardedConnection
    return cls


def _redis_client(redis: Any, url: str, policy: OutboundPolicy) -> Any:
    """A client for ``url`` whose every connection goes through the outbound guard."""
    from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection

    client = redis.from_url(url)
    pool = client.connection_pool
    base = pool.connection_class
    if issubclass(base, UnixDomainSocketConnection):
        # A local socket is as local as loopback: allowed only where loopback is.
        if policy.allow_private_network:
            return client
        raise OutboundBlocked("outbound connection to a unix socket refused")
    if not issubclass(base, Connection):
        raise OutboundBlocked(f"redis connection class {base.__name__} is not guarded")
    options = pool.connection_kwargs
    if issubclass(base, SSLConnection) and (
        options.get("ssl_cert_reqs", "required") not in ("required", ssl.CERT_REQUIRED)
        or options.get("ssl_check_hostname", True) is False
    ):
        # As for HTTP and SMTP: a private CA goes in ssl_ca_certs, verification stays on.
        raise PermanentError("redis: TLS certificate verification cannot be turned off")
    pool.connection_class = _guarded_connection_class(base, policy)
    return client


class RedisPubSub:
    """PUBLISH ``{"event", "payload"}`` as JSON on ``{prefix}{topic}``.

    The server is reached through the outbound guard with the instance's policy, like HTTP:
    a URL whose host is private, loopback or cloud metadata raises OutboundBlocked unless the
    policy allows it.
    """

    # Clients per event loop, URL and policy (a client is bound to the loop it was created in).
    # Every sync ``run_due`` has its own loop: the clients of closed loops are forgotten, so the
    # garbage collector closes their sockets, instead of one connection piling up per run.
    _clients: ClassVar[dict[asyncio.AbstractEventLoop, dict[tuple[str, OutboundPolicy], Any]]] = {}

    @classmethod
    def _client(cls, redis: Any, url: str, policy: OutboundPolicy) -> Any:
        for loop in [loop for loop in cls._clients if loop.is_closed()]:
            del cls._clients[loop]
        clients = cls._clients.setdefault(asyncio.get_running_loop(), {})
        client = clients.get((url, policy))
        if client is None:
            client = clients[(url, policy)] = _redis_client(redis, url, policy)
        return client

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        redis = require_extra("redis.asyncio", "redis")
        topic, event, payload = _parts(message)
        url = adapter.credentials.get("url") or adapter.config.get("url")
        if not url:
            raise PermanentError("redis pubsub adapter has no url (credentials.url or config.url)")
        try:
            client = self._client(redis, url, policy_of(ctx.http))
        except ValueError as exc:  # redis' own message names the problem, not the password
            raise Secrets([url]).scrub_error(
                PermanentError(f"redis pubsub url is invalid: {exc}")
            ) from None
        channel = f"{adapter.config.get('prefix', '')}{topic}"
        body = json.dumps(
            {"event": event, "payload": payload, "idempotency_key": message.idempotency_key},
            default=str,
        )
        try:
            receivers = await client.publish(channel, body)
        except (OSError, redis.ConnectionError, redis.TimeoutError) as exc:
            # redis wraps what _connect raised; the guard's refusal is not worth a retry.
            if isinstance(exc.__cause__, OutboundBlocked):
                raise exc.__cause__ from None
            # Scrubbed and unchained: a connection error may quote the URL and its password.
            raise Secrets([url]).scrub_error(
                TransientError(f"redis publish failed: {exc}")
            ) from None
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
