"""Every HTTP provider against its fake API: one table, the same outcomes for all."""

from __future__ import annotations

import pytest
from cases import CASES
from harness import FakeProvider
from pytest_httpserver import HTTPServer

from dripdrop.channels import DeliveryContext, get_provider, validate_adapter
from dripdrop.errors import PermanentError, TransientError, ValidationError

by_case = pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])


async def _send(case, base, ctx, credentials=None):
    provider = get_provider(case.channel, case.provider)
    return await provider.send(case.message(base), case.adapter(base, credentials), ctx)


@by_case
async def test_success_returns_the_provider_message_id(case, httpserver: HTTPServer, base, ctx):
    fake = FakeProvider(httpserver, case, "success")
    result = await _send(case, base, ctx)
    assert fake.rejections == []
    assert len(fake.requests) == 1
    assert result.provider_message_id == case.expected_id
    assert result.status == "sent"
    expected = case.success.body if case.success.body != "" else None
    assert result.response == expected


@by_case
async def test_client_error_is_permanent(case, httpserver: HTTPServer, base, ctx):
    FakeProvider(httpserver, case, "client_error")
    with pytest.raises(PermanentError) as info:
        await _send(case, base, ctx)
    assert info.value.status == case.client_error.status


@by_case
async def test_rejected_credentials_are_permanent(case, httpserver: HTTPServer, base, ctx):
    fake = FakeProvider(httpserver, case, "success")
    with pytest.raises(PermanentError):
        await _send(case, base, ctx, credentials=case.bad_credentials)
    assert fake.rejections, "the fake API should have refused the bad credentials"


@by_case
async def test_rate_limit_is_transient_with_retry_after(case, httpserver: HTTPServer, base, ctx):
    FakeProvider(httpserver, case, "rate_limited")
    with pytest.raises(TransientError) as info:
        await _send(case, base, ctx)
    assert info.value.retry_after == case.expected_retry_after
    assert info.value.status == 429


@by_case
async def test_server_error_is_transient(case, httpserver: HTTPServer, base, ctx):
    FakeProvider(httpserver, case, "server_error")
    with pytest.raises(TransientError) as info:
        await _send(case, base, ctx)
    assert info.value.status == 503


@by_case
async def test_refused_connection_is_transient(case, closed_base, ctx: DeliveryContext):
    with pytest.raises(TransientError) as info:
        await _send(case, closed_base, ctx)
    for secret in case.secrets:
        assert secret not in str(info.value)


@by_case
async def test_secrets_never_reach_error_text(case, httpserver: HTTPServer, base, ctx):
    # The fake API echoes the request URL and the credentials in its error body.
    FakeProvider(httpserver, case, "echo")
    with pytest.raises(PermanentError) as info:
        await _send(case, base, ctx)
    shown = f"{info.value} {info.value.response!r}"
    assert "bad request to" in shown  # the provider's answer is kept, only scrubbed
    for secret in case.secrets:
        assert secret not in shown


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.required_credential],
    ids=[c.id for c in CASES if c.required_credential],
)
def test_missing_credential_is_a_validation_error(case, base):
    creds = {k: v for k, v in case.credentials.items() if k != case.required_credential}
    with pytest.raises(ValidationError) as info:
        validate_adapter(case.channel, case.provider, creds, case.adapter(base).config)
    assert info.value.errors == {f"credentials.{case.required_credential}": ["is required"]}


@by_case
def test_complete_declaration_validates(case, base):
    adapter = case.adapter(base)
    creds, _ = validate_adapter(case.channel, case.provider, adapter.credentials, adapter.config)
    assert creds == adapter.credentials
