"""Pub/sub through the engine: the PostgreSQL inbox + NOTIFY, in-process subscribers, and Redis
PUBLISH (against the local Redis; skipped only when it is unreachable)."""

from __future__ import annotations

import json
import time

import psycopg
import pytest
from psycopg import sql

from dripdrop.engine.notifications import topic_channel

STEP = {
    "name": "notify",
    "channel": "pubsub",
    "config": {
        "topic": "user:{{ subscriber_id }}",
        "event": "welcome",
        "payload": {"title": "Hi {{ name }}", "plan": "{{ plan | upcase }}", "count": 3},
    },
}
DATA = {"name": "Ada", "plan": "pro"}
RENDERED = {"title": "Hi Ada", "plan": "PRO", "count": 3}


def _pubsub_adapter(dd, provider: str, **kw) -> None:
    dd.create_channel_adapter(name=provider, channel="pubsub", provider=provider, **kw)


def _psycopg_url(database_url: str) -> str:
    return database_url.replace("postgresql+psycopg://", "postgresql://")


def test_postgres_inbox_and_notify(env, dd, make_sequence, database_url: str) -> None:
    _pubsub_adapter(dd, "postgres")
    make_sequence([STEP])
    channel = topic_channel(dd.schema, "user:1")
    with psycopg.connect(_psycopg_url(database_url), autocommit=True) as listener:
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        enrollment = dd.enroll("s", {"type": "User", "id": 1}, data=DATA)
        dd.enroll("s", {"type": "User", "id": 2}, data={"name": "Bob", "plan": "free"})
        dd.run_due()
        received = list(listener.notifies(timeout=5.0, stop_after=1))

    (ex,) = dd.list_executions(enrollment.id)
    assert ex.state == "sent", ex.error_message
    assert ex.recipient == "user:1"
    assert ex.response["provider"] == "postgres"

    (note,) = dd.list_notifications("user:1")
    assert note.event == "welcome"
    assert note.payload == RENDERED
    assert note.read_at is None
    assert note.enrollment_id == enrollment.id
    assert note.execution_id == ex.id
    (other,) = dd.list_notifications("user:2")
    assert other.payload["title"] == "Hi Bob"

    assert dd.mark_read(note.id) == 1
    (note,) = dd.list_notifications("user:1")
    assert note.read_at is not None
    assert dd.list_notifications("user:1", unread_only=True) == []
    assert dd.mark_read(note.id) == 0, "already read"

    (n,) = received
    assert n.channel == channel
    body = json.loads(n.payload)
    assert body == {"id": str(note.id), "topic": "user:1", "event": "welcome", "payload": RENDERED}


def test_postgres_redelivery_of_an_execution_stores_and_notifies_once(
    env, dd, make_sequence, database_url: str
) -> None:
    import asyncio

    from dripdrop.channels import AdapterInfo, Message
    from dripdrop.channels.providers.pubsub import PostgresPubSub
    from dripdrop.worker.db import ThreadDb
    from dripdrop.worker.services import Services

    _pubsub_adapter(dd, "postgres")
    make_sequence([STEP])
    channel = topic_channel(dd.schema, "user:1")
    with psycopg.connect(_psycopg_url(database_url), autocommit=True) as listener:
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        enrollment = dd.enroll("s", {"type": "User", "id": 1}, data=DATA)
        dd.run_due()
        (ex,) = dd.list_executions(enrollment.id)
        # The same execution delivered again, as after its worker died before recording the
        # outcome (or its lease ran out): same execution id, the worker's publish path.
        message = Message(
            channel="pubsub",
            recipient="user:1",
            fields={"topic": "user:1", "event": "welcome", "payload": RENDERED},
            execution_id=str(ex.id),
            idempotency_key=str(ex.id),
            metadata={"enrollment_id": str(enrollment.id)},
        )
        adapter = AdapterInfo(id=None, name="postgres", channel="pubsub", provider="postgres")

        async def deliver_again():
            services = Services(dd.runtime, ThreadDb(dd.runtime))
            try:
                return await PostgresPubSub().send(message, adapter, services.delivery_context)
            finally:
                await services.aclose()

        again = asyncio.run(deliver_again())
        received = list(listener.notifies(timeout=1.0))

    (note,) = dd.list_notifications("user:1")
    assert note.execution_id == ex.id
    assert again.provider_message_id == str(note.id)  # the first delivery's notification
    assert [json.loads(n.payload)["id"] for n in received] == [str(note.id)]


def test_local_subscribers_receive_the_delivery(dd, make_sequence) -> None:
    _pubsub_adapter(dd, "local")
    make_sequence([STEP])
    got: list[tuple] = []
    everything: list[str] = []
    unsubscribe = dd.subscribe(
        "user:1", lambda topic, event, payload: got.append((topic, event, payload))
    )
    dd.subscribe("*", lambda topic, event, payload: everything.append(topic))
    enrollment = dd.enroll("s", {"type": "User", "id": 1}, data=DATA)
    dd.enroll("s", {"type": "User", "id": 2}, data=DATA)
    dd.run_due()
    assert got == [("user:1", "welcome", RENDERED)]
    assert sorted(everything) == ["user:1", "user:2"]
    (ex,) = dd.list_executions(enrollment.id)
    assert ex.state == "sent"
    assert ex.response["body"]["subscribers"] == 2  # the topic's and the "*" subscriber

    unsubscribe()
    dd.enroll("s", {"type": "User", "id": 3}, data=DATA)
    dd.run_due()
    assert len(got) == 1


def test_local_subscriber_error_fails_the_delivery(dd, make_sequence) -> None:
    _pubsub_adapter(dd, "local")
    make_sequence([STEP])

    def broken(topic, event, payload):
        raise ValueError("subscriber bug")

    dd.subscribe("user:1", broken)
    enrollment = dd.enroll("s", {"type": "User", "id": 1}, data=DATA)
    dd.run_due()
    (ex,) = dd.list_executions(enrollment.id)
    assert ex.state == "failed"
    assert "subscriber bug" in ex.error_message


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_client():
    import redis  # a dev dependency; the machine runs Redis on 127.0.0.1:6379

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except (redis.ConnectionError, OSError) as exc:
        pytest.fail(f"Redis unreachable at {REDIS_URL} (it runs on this machine): {exc}")
    try:
        yield client
    finally:
        client.close()


def _messages(pubsub, want: int, timeout: float = 5.0) -> list[dict]:
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message:
            out.append(message)
    return out


def test_redis_publish_reaches_a_subscriber(env, dd, make_sequence, redis_client) -> None:
    prefix = f"{dd.schema}:"
    _pubsub_adapter(dd, "redis", credentials={"url": REDIS_URL}, config={"prefix": prefix})
    make_sequence([STEP])
    pubsub = redis_client.pubsub()
    pubsub.psubscribe(f"{prefix}user:*")
    try:
        assert pubsub.get_message(timeout=2.0)["type"] == "psubscribe"
        enrollment = dd.enroll("s", {"type": "User", "id": 1}, data=DATA)
        dd.run_due()
        (message,) = _messages(pubsub, 1)
        (ex,) = dd.list_executions(enrollment.id)
        assert ex.state == "sent", ex.error_message
        assert ex.response["body"] == {"channel": f"{prefix}user:1", "receivers": 1}
        body = json.loads(message["data"])
        assert body["event"] == "welcome"
        assert body["payload"] == RENDERED
        assert body["idempotency_key"]

        # Each run_due has its own event loop: later runs must publish as well.
        for i in (2, 3, 4):
            later = dd.enroll("s", {"type": "User", "id": i}, data=DATA)
            dd.run_due()
            (ex,) = dd.list_executions(later.id)
            assert ex.state == "sent", ex.error_message
        later_messages = _messages(pubsub, 3)
        assert [m["channel"].decode() for m in later_messages] == [
            f"{prefix}user:{i}" for i in (2, 3, 4)
        ]
    finally:
        pubsub.close()


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_redis_provider_does_not_keep_a_connection_per_event_loop(redis_client) -> None:
    """Each sync ``run_due`` runs in a fresh event loop. The provider must keep working across
    loops, and must not keep one client (one open Redis connection) per finished loop."""
    import asyncio
    import gc
    import uuid

    from dripdrop.channels import AdapterInfo, DeliveryContext, Message
    from dripdrop.channels.providers.pubsub import RedisPubSub
    from dripdrop.net import OutboundPolicy, create_http_client

    name = f"dripdrop-e2e-{uuid.uuid4().hex[:8]}"
    adapter = AdapterInfo(
        id=None,
        name="r",
        channel="pubsub",
        provider="redis",
        credentials={"url": f"{REDIS_URL}?client_name={name}"},
    )
    message = Message(
        channel="pubsub",
        recipient="t",
        fields={"topic": "dripdrop-e2e-loops", "event": "e", "payload": {}},
        execution_id="x",
        idempotency_key="k",
    )

    async def publish_once() -> str:
        # The local Redis is a loopback destination: allowed as the test DripDrop allows it.
        http = create_http_client(OutboundPolicy(allow_private_network=True))
        try:
            return (await RedisPubSub().send(message, adapter, DeliveryContext(http=http))).status
        finally:
            await http.aclose()

    results = [asyncio.run(publish_once()) for _ in range(10)]
    assert results == ["published"] * 10
    gc.collect()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        open_conns = [c for c in redis_client.client_list() if c.get("name") == name]
        if len(open_conns) <= 1:
            break
        time.sleep(0.1)
    assert len(open_conns) <= 1, f"{len(open_conns)} connections left open after 10 runs"


def test_redis_adapter_without_url_fails_clearly(dd, make_sequence) -> None:
    """Neither credentials.url nor config.url: a clear permanent failure, not a library error."""
    _pubsub_adapter(dd, "redis")
    make_sequence([STEP])
    enrollment = dd.enroll("s", {"type": "User", "id": 1}, data=DATA)
    dd.run_due()
    (ex,) = dd.list_executions(enrollment.id)
    assert ex.state == "failed"
    assert ex.error_message == "redis pubsub adapter has no url (credentials.url or config.url)"
