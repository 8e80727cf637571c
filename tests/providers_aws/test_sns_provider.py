"""aws_sns against a local SNS query endpoint that checks the form, XML answers and SigV4."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from aws_fakes import ACCESS_KEY, REGION, SECRET_KEY, SigV4Verifier
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from dripdrop.channels import get_provider, validate_adapter
from dripdrop.channels.base import AdapterInfo, DeliveryContext, Message
from dripdrop.errors import PermanentError, TransientError, ValidationError

NS = "http://sns.amazonaws.com/doc/2010-03-31/"
OK = f"""<PublishResponse xmlns="{NS}">
  <PublishResult><MessageId>567910cd-659e-55d4-8ccb-5aaf14679dc0</MessageId></PublishResult>
  <ResponseMetadata><RequestId>d74b8436-ae13-5ab4-a9ff-ce54dfea72a0</RequestId></ResponseMetadata>
</PublishResponse>"""


def _error(status: int, kind: str, code: str, message: str) -> Response:
    body = (
        f'<ErrorResponse xmlns="{NS}"><Error><Type>{kind}</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
    )
    return Response(body, status=status, content_type="text/xml")


class FakeSns:
    """Answers Publish like SNS would; ``mode`` picks the answer for valid requests."""

    def __init__(self) -> None:
        self.verifier = SigV4Verifier("sns")
        self.mode = "ok"
        self.forms: list[dict[str, str]] = []

    def __call__(self, request: Request) -> Response:
        if not request.headers.get("Content-Type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return _error(400, "Sender", "MalformedQueryString", "bad content type")
        if problem := self.verifier.problem(request):
            return _error(403, "Sender", "SignatureDoesNotMatch", problem)
        form = request.form.to_dict()
        if form.get("Action") != "Publish" or form.get("Version") != "2010-03-31":
            return _error(400, "Sender", "InvalidAction", "unknown action")
        self.forms.append(form)
        if self.mode == "invalid":
            return _error(
                400,
                "Sender",
                "InvalidParameter",
                "Invalid parameter: PhoneNumber Reason: +1555 is not valid to publish",
            )
        if self.mode == "throttle":
            return _error(400, "Sender", "Throttling", "Rate exceeded")
        if self.mode == "error":
            return _error(500, "Receiver", "InternalError", "internal error")
        return Response(OK, status=200, content_type="text/xml")


@pytest.fixture
def sns(httpserver: HTTPServer) -> FakeSns:
    fake = FakeSns()
    httpserver.expect_request("/", method="POST").respond_with_handler(fake)
    return fake


def _adapter(
    httpserver: HTTPServer, creds: dict[str, str] | None = None, **config: Any
) -> AdapterInfo:
    credentials = {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY} | (creds or {})
    return AdapterInfo(
        id="a3",
        name="sns",
        channel="sms",
        provider="aws_sns",
        credentials=credentials,
        config={"region": REGION, "base_url": httpserver.url_for("/")} | config,
    )


def _message(to: str = "+44 7700 900123", body: str = "Your code is 4521 — thanks!") -> Message:
    return Message("sms", to, {"body": body}, "exec-3", "exec-3-try")


async def _send(http: httpx2.AsyncClient, adapter: AdapterInfo, message: Message | None = None):
    provider = get_provider("sms", "aws_sns")
    return await provider.send(message or _message(), adapter, DeliveryContext(http=http))


async def test_publish_signed_form(sns: FakeSns, httpserver: HTTPServer, http) -> None:
    result = await _send(http, _adapter(httpserver))
    assert result.provider_message_id == "567910cd-659e-55d4-8ccb-5aaf14679dc0"
    assert result.status == "sent"
    [form] = sns.forms
    assert form == {
        "Action": "Publish",
        "Version": "2010-03-31",
        "PhoneNumber": "+447700900123",
        "Message": "Your code is 4521 — thanks!",
    }


async def test_sms_attributes(sns: FakeSns, httpserver: HTTPServer, http) -> None:
    adapter = _adapter(httpserver, sender_id="DripDrop", sms_type="Transactional")
    await _send(http, adapter)
    [form] = sns.forms
    attrs = {
        form[f"MessageAttributes.entry.{n}.Name"]: (
            form[f"MessageAttributes.entry.{n}.Value.DataType"],
            form[f"MessageAttributes.entry.{n}.Value.StringValue"],
        )
        for n in (1, 2)
    }
    assert attrs == {
        "AWS.SNS.SMS.SenderID": ("String", "DripDrop"),
        "AWS.SNS.SMS.SMSType": ("String", "Transactional"),
    }
    assert "MessageAttributes.entry.3.Name" not in form


async def test_wrong_secret_is_rejected(sns: FakeSns, httpserver: HTTPServer, http) -> None:
    with pytest.raises(PermanentError) as info:
        await _send(http, _adapter(httpserver, {"secret_access_key": "wrong"}))
    assert info.value.status == 403
    assert info.value.response["code"] == "SignatureDoesNotMatch"
    assert sns.forms == []


@pytest.mark.parametrize(
    ("mode", "error", "status", "code"),
    [
        ("invalid", PermanentError, 400, "InvalidParameter"),
        ("throttle", TransientError, 400, "Throttling"),
        ("error", TransientError, 500, "InternalError"),
    ],
)
async def test_errors_are_classified(
    sns: FakeSns,
    httpserver: HTTPServer,
    http,
    mode: str,
    error: type[Exception],
    status: int,
    code: str,
) -> None:
    sns.mode = mode
    with pytest.raises(error) as info:
        await _send(http, _adapter(httpserver))
    assert type(info.value) is error
    assert info.value.status == status
    assert info.value.response["code"] == code
    assert code in str(info.value)


@pytest.mark.parametrize(("to", "body"), [("0770 0900", "hi"), ("+447700900123", "  ")])
async def test_bad_number_or_empty_body_is_permanent_without_a_request(
    sns: FakeSns, httpserver: HTTPServer, http, to: str, body: str
) -> None:
    with pytest.raises(PermanentError):
        await _send(http, _adapter(httpserver), _message(to, body))
    assert httpserver.log == []


def test_validation_names_fields() -> None:
    with pytest.raises(ValidationError) as info:
        validate_adapter("sms", "aws_sns", {}, {"region": REGION, "sms_type": "Urgent"})
    assert set(info.value.errors) == {
        "credentials.access_key_id",
        "credentials.secret_access_key",
        "config.sms_type",
    }
