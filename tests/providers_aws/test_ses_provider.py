"""amazon_ses against a local SES v2 endpoint that checks path, JSON body and SigV4."""

from __future__ import annotations

import base64
import email
import json
from email import policy
from typing import Any

import httpx2
import pytest
from aws_fakes import ACCESS_KEY, REGION, SECRET_KEY, SigV4Verifier
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from dripdrop.channels import get_provider, validate_adapter
from dripdrop.channels.base import AdapterInfo, DeliveryContext, Message
from dripdrop.errors import PermanentError, TransientError, ValidationError

PATH = "/v2/email/outbound-emails"


class FakeSes:
    """Answers SendEmail like SES v2 would; ``mode`` picks the answer for valid requests."""

    def __init__(self) -> None:
        self.verifier = SigV4Verifier("ses")
        self.mode = "ok"
        self.received: list[dict[str, Any]] = []

    def _error(self, status: int, kind: str, message: str) -> Response:
        return Response(
            json.dumps({"message": message}),
            status=status,
            content_type="application/json",
            headers={
                "x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazonaws.sesv2/"
            },
        )

    def __call__(self, request: Request) -> Response:
        if request.headers.get("Content-Type", "").split(";")[0] != "application/json":
            return self._error(400, "BadRequestException", "Content-Type must be JSON")
        if problem := self.verifier.problem(request):
            return self._error(403, "SignatureDoesNotMatch", problem)
        body = json.loads(request.get_data())
        self.received.append(body)
        if self.mode == "reject":
            return self._error(400, "MessageRejected", "Email address is not verified.")
        if self.mode == "unverified":
            return self._error(400, "MailFromDomainNotVerifiedException", "domain not verified")
        if self.mode == "throttle":
            resp = self._error(429, "TooManyRequestsException", "Maximum sending rate exceeded.")
            resp.headers["Retry-After"] = "7"
            return resp
        if self.mode == "error":
            return self._error(500, "InternalFailure", "internal failure")
        return Response(
            json.dumps({"MessageId": "0102018f-ses-id-000001"}),
            status=200,
            content_type="application/json",
        )


@pytest.fixture
def ses(httpserver: HTTPServer) -> FakeSes:
    fake = FakeSes()
    httpserver.expect_request(PATH, method="POST").respond_with_handler(fake)
    return fake


def _adapter(httpserver: HTTPServer, **creds: str) -> AdapterInfo:
    credentials = {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY} | creds
    return AdapterInfo(
        id="a2",
        name="ses",
        channel="email",
        provider="amazon_ses",
        credentials=credentials,
        config={
            "region": REGION,
            "base_url": httpserver.url_for("/"),
            "configuration_set": "marketing",
            "from": "Team <team@example.com>",
        },
    )


def _message(**fields: Any) -> Message:
    base = {
        "subject": "Your trial ends soon",
        "body": "<p>Upgrade <a href='https://x.io/up'>now</a></p>",
        "reply_to": "help@example.com",
        "unsubscribe_url": "https://x.io/unsub/9",
        "cc": "boss@example.org",
    }
    return Message("email", "Ann <ann@example.org>", base | fields, "exec-9", "exec-9-try")


async def _send(http: httpx2.AsyncClient, adapter: AdapterInfo, message: Message | None = None):
    provider = get_provider("email", "amazon_ses")
    return await provider.send(message or _message(), adapter, DeliveryContext(http=http))


async def test_send_raw_mime_signed(ses: FakeSes, httpserver: HTTPServer, http) -> None:
    result = await _send(http, _adapter(httpserver))
    assert result.provider_message_id == "0102018f-ses-id-000001"
    assert result.status == "sent"
    assert result.response["message_id_header"] == "<exec-9-try@example.com>"

    [body] = ses.received
    assert body["FromEmailAddress"] == "Team <team@example.com>"
    assert body["Destination"] == {
        "ToAddresses": ["ann@example.org"],
        "CcAddresses": ["boss@example.org"],
    }
    assert body["ReplyToAddresses"] == ["help@example.com"]
    assert body["ConfigurationSetName"] == "marketing"
    mime = email.message_from_bytes(
        base64.b64decode(body["Content"]["Raw"]["Data"]), policy=policy.default
    )
    assert mime["Subject"] == "Your trial ends soon"
    assert mime["To"] == "Ann <ann@example.org>"
    assert mime["Message-ID"] == "<exec-9-try@example.com>"
    assert mime["List-Unsubscribe"] == "<https://x.io/unsub/9>"
    assert mime["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [p.get_content_type() for p in mime.iter_parts()] == ["text/plain", "text/html"]
    assert "Upgrade now (https://x.io/up)" in mime.get_body(("plain",)).get_content()


async def test_session_token_is_sent_and_signed(ses: FakeSes, httpserver: HTTPServer, http) -> None:
    await _send(http, _adapter(httpserver, session_token="FQoGZXIvYXdzEXAMPLE"))
    assert len(ses.received) == 1
    [(request, _)] = httpserver.log
    assert request.headers["X-Amz-Security-Token"] == "FQoGZXIvYXdzEXAMPLE"
    assert "x-amz-security-token" in request.headers["Authorization"]


async def test_wrong_secret_is_rejected_by_signature_check(
    ses: FakeSes, httpserver: HTTPServer, http
) -> None:
    with pytest.raises(PermanentError) as info:
        await _send(http, _adapter(httpserver, secret_access_key="not-the-secret"))
    assert info.value.status == 403
    assert info.value.response["code"] == "SignatureDoesNotMatch"
    assert ses.received == []


@pytest.mark.parametrize(
    ("mode", "error", "status", "code"),
    [
        ("reject", PermanentError, 400, "MessageRejected"),
        ("unverified", PermanentError, 400, "MailFromDomainNotVerifiedException"),
        ("throttle", TransientError, 429, "TooManyRequestsException"),
        ("error", TransientError, 500, "InternalFailure"),
    ],
)
async def test_errors_are_classified(
    ses: FakeSes,
    httpserver: HTTPServer,
    http,
    mode: str,
    error: type[Exception],
    status: int,
    code: str,
) -> None:
    ses.mode = mode
    with pytest.raises(error) as info:
        await _send(http, _adapter(httpserver))
    assert type(info.value) is error
    assert info.value.status == status
    assert info.value.response["code"] == code
    assert code in str(info.value)
    if mode == "throttle":
        assert info.value.retry_after == 7
    if mode == "reject":
        assert "not verified" in str(info.value)


async def test_unreachable_endpoint_is_transient(http) -> None:
    adapter = AdapterInfo(
        None,
        "ses",
        "email",
        "amazon_ses",
        {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY},
        {"region": REGION, "base_url": "http://127.0.0.1:9", "from": "a@example.com"},
    )
    with pytest.raises(TransientError):
        await _send(http, adapter)


def test_missing_credentials_name_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        validate_adapter(
            "email", "amazon_ses", {"secret_access_key": SECRET_KEY}, {"region": REGION}
        )
    assert set(info.value.errors) == {"credentials.access_key_id"}
    assert SECRET_KEY not in str(info.value)
    with pytest.raises(ValidationError) as info:
        validate_adapter(
            "email",
            "amazon_ses",
            {"access_key_id": "A", "secret_access_key": "S"},
            {"region": "Europe"},
        )
    assert set(info.value.errors) == {"config.region"}


async def test_goes_through_the_guarded_client(ses: FakeSes, httpserver: HTTPServer) -> None:
    from dripdrop.net import OutboundPolicy, create_http_client

    allowed = create_http_client(OutboundPolicy(allow_private_network=True))
    async with allowed:
        result = await _send(allowed, _adapter(httpserver))
    assert result.provider_message_id == "0102018f-ses-id-000001"
    assert len(ses.received) == 1

    # The default policy refuses loopback: a permanent failure, and nothing reaches the server.
    strict = create_http_client(OutboundPolicy())
    async with strict:
        with pytest.raises(PermanentError):
            await _send(strict, _adapter(httpserver))
    assert len(ses.received) == 1
