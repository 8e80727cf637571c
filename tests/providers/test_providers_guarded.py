"""Providers behind the worker's guarded client: refused destinations fail permanently."""

from __future__ import annotations

import pytest
from cases import CASES
from harness import FakeProvider
from pytest_httpserver import HTTPServer

from dripdrop.channels import DeliveryContext, get_provider
from dripdrop.errors import PermanentError
from dripdrop.net import OutboundPolicy, create_http_client


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_a_blocked_destination_is_permanent_and_redacted(case, httpserver: HTTPServer, base):
    fake = FakeProvider(httpserver, case, "success")
    # The default policy refuses loopback: nothing may reach the fake API.
    async with create_http_client(OutboundPolicy()) as client:
        with pytest.raises(PermanentError) as info:
            await get_provider(case.channel, case.provider).send(
                case.message(base), case.adapter(base), DeliveryContext(http=client)
            )
    assert fake.requests == []
    for secret in case.secrets:
        assert secret not in str(info.value)


async def test_webhook_redirects_are_followed_by_the_guard(httpserver: HTTPServer, base):
    from dripdrop.channels import AdapterInfo, Message

    httpserver.expect_request("/old").respond_with_data(
        "", status=307, headers={"Location": f"{base}/new"}
    )
    httpserver.expect_request("/new", method="POST").respond_with_json({"moved": True})
    policy = OutboundPolicy(allowlist=("127.0.0.1/32",))
    async with create_http_client(policy) as client:
        result = await get_provider("webhook", "http").send(
            Message("webhook", f"{base}/old", {"body": "{}"}, "e", "k"),
            AdapterInfo(None, "w", "webhook", "http", {}, {}),
            DeliveryContext(http=client),
        )
    assert result.response == {"moved": True}
    assert httpserver.log[-1][0].get_data() == b"{}"  # 307 keeps method and body
