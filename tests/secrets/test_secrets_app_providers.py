"""A provider an app registers may echo its credentials: what it answers or raises is scrubbed
by the engine before anything is stored (built-in providers scrub their own)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from dripdrop.channels import DeliveryResult
from dripdrop.channels.base import Fields, ProviderSpec
from dripdrop.channels.registry import register
from dripdrop.errors import PermanentError

TOKEN = "tok_live_4f9a8b7c6d5e4f3a2b1c"


class LeakyCredentials(Fields):
    api_token: str


class LeakyConfig(Fields):
    mode: str = "answer"


class Leaky:
    """Echoes its token back in every way a careless provider might."""

    async def send(self, message: Any, adapter: Any, ctx: Any) -> DeliveryResult:
        token = adapter.credentials["api_token"]
        encoded = base64.b64encode(f"user:{token}".encode()).decode()
        if adapter.config.get("mode") == "refused":
            raise PermanentError(f"401 for Authorization: Bearer {token}", response={"t": token})
        if adapter.config.get("mode") == "crash":
            raise RuntimeError(f"client blew up holding {token}")
        return DeliveryResult(
            provider_message_id=f"msg-{token}",
            response={"echo": token, "basic": f"Basic {encoded}", "nested": [{"t": token}]},
        )


register(
    ProviderSpec(
        "sms", "leaky_test", LeakyCredentials, LeakyConfig, Leaky, secret_fields=("api_token",)
    )
)


@pytest.mark.parametrize("mode", ["answer", "refused", "crash"])
def test_an_app_providers_echo_is_scrubbed_before_it_is_stored(dd, mode: str) -> None:
    dd.create_channel_adapter(
        name="Leaky",
        channel="sms",
        provider="leaky_test",
        credentials={"api_token": TOKEN},
        config={"mode": mode},
    )
    seq = dd.create_sequence(name="L", key="l")
    version = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(version.id, name="Text", channel="sms", config={"body": "hi"})
    enrollment = dd.enroll("l", {"type": "User", "id": 1}, data={"phone": "+15550100001"})
    dd.run_due()
    (execution,) = dd.list_executions(enrollment.id)
    stored = repr((execution.response, execution.error_message, execution))
    assert TOKEN not in stored
    assert base64.b64encode(f"user:{TOKEN}".encode()).decode() not in stored
    if mode == "answer":
        assert execution.state == "sent"
        assert execution.response["body"]["echo"] == "***"
        assert execution.response["provider_message_id"] == "msg-***"
    else:
        assert execution.state == "failed"
        assert "***" in execution.error_message
