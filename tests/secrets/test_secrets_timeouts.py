"""One documented limit for per-request timeouts (MAX_TIMEOUT_MS): a step's, an adapter's or an
HTTP hook's ``timeout_ms`` is honoured over the policy's default up to it, and refused above it
when the definition is created (item 3 of the issue).

The policy default is lowered to 0.5 s here so that "longer than the default" takes a second,
not the ten of the real default.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from dripdrop import ValidationError
from dripdrop.channels import AdapterInfo, DeliveryContext, Message
from dripdrop.channels.registry import get_provider
from dripdrop.errors import PermanentError, TransientError
from dripdrop.hooks.http import call_http_hook
from dripdrop.net import OutboundPolicy, create_http_client
from dripdrop.net.policy import MAX_TIMEOUT_MS

DEFAULT_S = 0.5  # the policy's default timeout in these tests
ANSWER_AFTER_S = 1.0  # the server's delay: longer than the default, shorter than 1.5 s


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    policy = OutboundPolicy(allowlist=("127.0.0.1/32",), timeout=DEFAULT_S)
    async with create_http_client(policy) as c:
        yield c


@pytest.fixture
def slow_url(httpserver: HTTPServer, slow_handler) -> str:
    def answer() -> Response:
        return Response('{"score": 7}', mimetype="application/json")

    handler = slow_handler(httpserver, ANSWER_AFTER_S, answer)
    httpserver.expect_request("/slow").respond_with_handler(handler)
    return httpserver.url_for("/slow")


def _webhook(url: str, fields: dict[str, Any], config: dict[str, Any]) -> tuple[Any, Any]:
    message = Message("webhook", url, {"body": "{}", **fields}, "e", "k")
    return message, AdapterInfo(None, "w", "webhook", "http", {}, config)


@pytest.mark.parametrize(
    ("fields", "config"),
    [({}, {"timeout_ms": 1500}), ({"timeout_ms": 1500}, {}), ({"timeout_ms": "1500"}, {})],
    ids=["adapter", "step", "step-rendered"],
)
async def test_a_webhook_timeout_longer_than_the_default_is_honoured(
    client: Any, slow_url: str, fields: dict[str, Any], config: dict[str, Any]
) -> None:
    message, adapter = _webhook(slow_url, fields, config)
    started = time.monotonic()
    result = await get_provider("webhook", "http").send(
        message, adapter, DeliveryContext(http=client)
    )
    assert result.status == "sent" and result.response == {"score": 7}
    assert time.monotonic() - started >= ANSWER_AFTER_S


async def test_without_a_timeout_the_policy_default_still_applies(
    client: Any, slow_url: str
) -> None:
    message, adapter = _webhook(slow_url, {}, {})
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"timed out|exceeded"):
        await get_provider("webhook", "http").send(message, adapter, DeliveryContext(http=client))
    assert time.monotonic() - started < ANSWER_AFTER_S


async def test_a_step_timeout_above_the_maximum_is_refused_before_sending(
    client: Any, httpserver: HTTPServer
) -> None:
    message, adapter = _webhook(httpserver.url_for("/x"), {"timeout_ms": MAX_TIMEOUT_MS + 1}, {})
    with pytest.raises(PermanentError, match="timeout_ms"):
        await get_provider("webhook", "http").send(message, adapter, DeliveryContext(http=client))
    assert httpserver.log == []


async def test_an_http_hook_timeout_longer_than_the_default_is_honoured(
    client: Any, slow_url: str
) -> None:
    hook = SimpleNamespace(
        id=None,
        key="score",
        url=slow_url,
        method="GET",
        headers=None,
        body_template=None,
        auth_type="none",
        auth_config=None,
        response_type="number",
        response_path="score",
        timeout_ms=1500,
        retry_count=0,
    )
    result = await call_http_hook(None, hook, {}, client)
    assert result.value == 7


@pytest.mark.parametrize(
    ("channel", "provider", "credentials", "config"),
    [
        ("webhook", "http", {}, {}),
        ("email", "mailgun", {"api_key": "key-1234"}, {"domain": "mg.example.com"}),
        ("slack", "webhook", {"webhook_url": "https://hooks.slack.com/services/T/B/x"}, {}),
        ("sms", "twilio", {"account_sid": "AC1", "auth_token": "tok-1234"}, {"from": "+1555"}),
    ],
)
def test_an_adapter_timeout_above_the_maximum_is_refused_naming_the_field(
    dd: Any, channel: str, provider: str, credentials: dict[str, Any], config: dict[str, Any]
) -> None:
    def create(timeout_ms: int) -> Any:
        return dd.create_channel_adapter(
            name=f"a{timeout_ms}",
            channel=channel,
            provider=provider,
            credentials=credentials,
            config={**config, "timeout_ms": timeout_ms},
        )

    assert create(MAX_TIMEOUT_MS).config["timeout_ms"] == MAX_TIMEOUT_MS
    with pytest.raises(ValidationError) as info:
        create(MAX_TIMEOUT_MS + 1)
    assert list(info.value.errors) == ["config.timeout_ms"]
    assert str(MAX_TIMEOUT_MS) in str(info.value.errors["config.timeout_ms"])


def test_an_http_hook_timeout_above_the_maximum_is_refused_naming_the_field(dd: Any) -> None:
    seq = dd.create_sequence(name="S", key="s")

    def create(timeout_ms: int) -> Any:
        return dd.create_http_hook(
            seq.id,
            name=f"h{timeout_ms}",
            key=f"h{timeout_ms}",
            url="https://example.com/x",
            timeout_ms=timeout_ms,
        )

    assert create(MAX_TIMEOUT_MS).timeout_ms == MAX_TIMEOUT_MS
    with pytest.raises(ValidationError) as info:
        create(MAX_TIMEOUT_MS + 1)
    assert list(info.value.errors) == ["timeout_ms"]
