"""What the HTTP email providers put on the wire: headers, alternatives, idempotency."""

from __future__ import annotations

import json

import pytest
from cases import CASE_BY_ID, EMAIL_FIELDS
from harness import IDEMPOTENCY_KEY, FakeProvider
from pytest_httpserver import HTTPServer

from dripdrop.channels import AdapterInfo, Message, get_provider
from dripdrop.errors import PermanentError, TransientError

MESSAGE_ID = f"<{IDEMPOTENCY_KEY}@mail.example.com>"
ONE_CLICK = "List-Unsubscribe=One-Click"


async def _sent(case_id, httpserver, base, ctx, fields=None):
    case = CASE_BY_ID[case_id]
    fake = FakeProvider(httpserver, case, "success")
    message = case.message(base)
    if fields is not None:
        message = Message(
            message.channel,
            message.recipient,
            fields,
            message.execution_id,
            message.idempotency_key,
        )
    await get_provider(case.channel, case.provider).send(message, case.adapter(base), ctx)
    assert fake.rejections == []
    return fake.requests[0]


async def test_mailgun_sends_unsubscribe_and_message_id_as_h_fields(httpserver, base, ctx):
    form = (await _sent("mailgun", httpserver, base, ctx))["body"]
    assert form["h:List-Unsubscribe"] == ["<https://example.com/u/ann>"]
    assert form["h:List-Unsubscribe-Post"] == [ONE_CLICK]
    assert form["h:Message-Id"] == [MESSAGE_ID]
    assert form["to"] == ["ann@example.com"]


async def test_sendgrid_sends_headers_and_text_before_html(httpserver, base, ctx):
    body = (await _sent("sendgrid", httpserver, base, ctx))["body"]
    assert body["headers"]["List-Unsubscribe"] == "<https://example.com/u/ann>"
    assert body["headers"]["List-Unsubscribe-Post"] == ONE_CLICK
    assert body["headers"]["Message-ID"] == MESSAGE_ID
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["content"][0]["value"] == "Hello Ann"  # derived from the HTML
    assert body["from"] == {"email": "hello@mail.example.com", "name": "DripDrop"}
    assert body["personalizations"] == [{"to": [{"email": "ann@example.com"}]}]


async def test_postmark_sends_headers_as_name_value_pairs(httpserver, base, ctx):
    body = (await _sent("postmark", httpserver, base, ctx))["body"]
    headers = {h["Name"]: h["Value"] for h in body["Headers"]}
    assert headers["List-Unsubscribe"] == "<https://example.com/u/ann>"
    assert headers["List-Unsubscribe-Post"] == ONE_CLICK
    assert headers["Message-ID"] == MESSAGE_ID
    assert body["MessageStream"] == "outbound"
    assert body["TextBody"] == "Hello Ann"


async def test_resend_sends_unsubscribe_headers_and_idempotency_key(httpserver, base, ctx):
    request = await _sent("resend", httpserver, base, ctx)
    assert request["headers"]["Idempotency-Key"] == IDEMPOTENCY_KEY
    assert request["body"]["headers"]["List-Unsubscribe"] == "<https://example.com/u/ann>"


async def test_step_fields_reach_the_api(httpserver, base, ctx):
    fields = {
        **EMAIL_FIELDS,
        "text": "Plain version",
        "reply_to": "Support <help@example.com>",
        "cc": ["bo@example.com"],
        "headers": {"X-Campaign": "welcome"},
    }
    body = (await _sent("postmark", httpserver, base, ctx, fields))["body"]
    assert body["TextBody"] == "Plain version"
    assert body["ReplyTo"] == "Support <help@example.com>"
    assert body["Cc"] == "bo@example.com"
    assert {"Name": "X-Campaign", "Value": "welcome"} in body["Headers"]


async def test_from_falls_back_to_the_adapter_config(httpserver, base, ctx):
    case = CASE_BY_ID["mailgun"]
    fake = FakeProvider(httpserver, case, "success")
    fields = {k: v for k, v in EMAIL_FIELDS.items() if k != "from"}
    adapter = case.adapter(base)
    adapter = AdapterInfo(
        adapter.id,
        adapter.name,
        "email",
        "mailgun",
        adapter.credentials,
        {**adapter.config, "from": "news@mg.example.com"},
    )
    message = Message("email", "ann@example.com", fields, "e", IDEMPOTENCY_KEY)
    await get_provider("email", "mailgun").send(message, adapter, ctx)
    assert fake.requests[0]["body"]["from"] == ["news@mg.example.com"]


@pytest.mark.parametrize(
    "fields",
    [
        {**EMAIL_FIELDS, "subject": "Hi\r\nBcc: victim@example.com"},
        {**EMAIL_FIELDS, "headers": {"From": "spoof@example.com"}},
        {k: v for k, v in EMAIL_FIELDS.items() if k != "from"},
    ],
)
async def test_unsendable_emails_fail_permanently_before_any_request(
    fields, httpserver: HTTPServer, base, ctx
):
    case = CASE_BY_ID["sendgrid"]
    fake = FakeProvider(httpserver, case, "success")
    message = Message("email", "ann@example.com", fields, "e", IDEMPOTENCY_KEY)
    with pytest.raises(PermanentError):
        await get_provider("email", "sendgrid").send(message, case.adapter(base), ctx)
    assert fake.requests == []


async def test_postmark_maintenance_code_is_transient(httpserver: HTTPServer, base, ctx):
    case = CASE_BY_ID["postmark"]
    httpserver.expect_request("/email").respond_with_json(
        {"ErrorCode": 100, "Message": "Maintenance"}, status=503
    )
    with pytest.raises(TransientError, match="ErrorCode 100"):
        await get_provider("email", "postmark").send(case.message(base), case.adapter(base), ctx)


async def test_resend_concurrent_idempotent_request_is_transient(httpserver, base, ctx):
    case = CASE_BY_ID["resend"]
    httpserver.expect_request("/emails").respond_with_data(
        json.dumps(
            {
                "statusCode": 409,
                "name": "concurrent_idempotent_requests",
                "message": "Same idempotency key used while original request is in progress",
            }
        ),
        status=409,
        content_type="application/json",
    )
    with pytest.raises(TransientError):
        await get_provider("email", "resend").send(case.message(base), case.adapter(base), ctx)


async def test_mailgun_eu_region_by_base_url(httpserver: HTTPServer, base, ctx):
    case = CASE_BY_ID["mailgun"]
    httpserver.expect_request("/eu/v3/mg.example.com/messages", method="POST").respond_with_json(
        {"id": "<eu@mg>", "message": "Queued. Thank you."}
    )
    adapter = case.adapter(base)
    adapter = AdapterInfo(
        None,
        "eu",
        "email",
        "mailgun",
        adapter.credentials,
        {**adapter.config, "base_url": base + "/eu/"},
    )
    result = await get_provider("email", "mailgun").send(case.message(base), adapter, ctx)
    assert result.provider_message_id == "<eu@mg>"
