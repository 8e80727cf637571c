"""Provider-specific answers the contract table does not cover: SMS, chat and webhooks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx2
import pytest
from cases import CASE_BY_ID, WEBHOOK_SECRET
from harness import IDEMPOTENCY_KEY, FakeProvider
from pytest_httpserver import HTTPServer

from dripdrop.channels import AdapterInfo, DeliveryContext, Message, get_provider
from dripdrop.channels.webhook_signing import verify_signature
from dripdrop.errors import ConfigurationError, PermanentError, TransientError


def _vonage_answer(status: str, text: str = "") -> dict:
    return {"message-count": "1", "messages": [{"status": status, "error-text": text}]}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("1", TransientError),  # throttled
        ("5", TransientError),  # internal error
        ("4", PermanentError),  # bad credentials
        ("9", PermanentError),  # no credit
    ],
)
async def test_vonage_status_inside_a_200_is_classified(status, error, httpserver, base, ctx):
    case = CASE_BY_ID["vonage"]
    httpserver.expect_request("/sms/json").respond_with_json(_vonage_answer(status, "nope"))
    with pytest.raises(error, match=f"status {status}"):
        await get_provider("sms", "vonage").send(case.message(base), case.adapter(base), ctx)


async def test_vonage_sends_unicode_type_and_client_ref(httpserver: HTTPServer, base, ctx):
    case = CASE_BY_ID["vonage"]
    fake = FakeProvider(httpserver, case, "success")
    message = Message("sms", "+447700900000", {"body": "Ça va? 👋"}, "e", IDEMPOTENCY_KEY)
    await get_provider("sms", "vonage").send(message, case.adapter(base), ctx)
    form = fake.requests[0]["body"]
    assert form["type"] == ["unicode"]
    assert form["to"] == ["447700900000"]
    assert form["client-ref"] == [IDEMPOTENCY_KEY]


async def test_twilio_rate_limit_code_is_transient_whatever_the_status(httpserver, base, ctx):
    case = CASE_BY_ID["twilio"]
    httpserver.expect_request(case.path).respond_with_json(
        {"code": 14107, "message": "SMS send rate limit exceeded", "status": 400}, status=400
    )
    with pytest.raises(TransientError, match="14107"):
        await get_provider("sms", "twilio").send(case.message(base), case.adapter(base), ctx)


async def test_twilio_messaging_service_replaces_from(httpserver: HTTPServer, base, ctx):
    case = CASE_BY_ID["twilio"]
    httpserver.expect_request(case.path).respond_with_json({"sid": "SM1"}, status=201)
    adapter = AdapterInfo(
        None,
        "t",
        "sms",
        "twilio",
        case.adapter(base).credentials,
        {"messaging_service_sid": "MG123", "base_url": base},
    )
    await get_provider("sms", "twilio").send(case.message(base), adapter, ctx)
    form = httpserver.log[0][0].form
    assert form["MessagingServiceSid"] == "MG123"
    assert "From" not in form


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("ratelimited", TransientError),
        ("internal_error", TransientError),
        ("not_in_channel", PermanentError),
        ("invalid_auth", PermanentError),
    ],
)
async def test_slack_bot_ok_false_is_classified(error, kind, httpserver, base, ctx):
    case = CASE_BY_ID["slack_bot"]
    httpserver.expect_request(case.path).respond_with_json({"ok": False, "error": error})
    with pytest.raises(kind, match=error):
        await get_provider("slack", "bot_api").send(case.message(base), case.adapter(base), ctx)


async def test_slack_webhook_error_text_hides_the_url(httpserver: HTTPServer, base, ctx):
    case = CASE_BY_ID["slack_webhook"]
    FakeProvider(httpserver, case, "client_error")
    with pytest.raises(PermanentError) as info:
        await get_provider("slack", "webhook").send(case.message(base), case.adapter(base), ctx)
    assert "invalid_payload" in str(info.value)
    assert "XXXXXXXXsecretXXXXXXXX" not in str(info.value)


async def test_telegram_plain_text_when_parse_mode_is_empty(httpserver: HTTPServer, base, ctx):
    case = CASE_BY_ID["telegram"]
    httpserver.expect_request(case.path).respond_with_json({"ok": True, "result": {}})
    message = Message("telegram", "42", {"text": "a_b", "parse_mode": ""}, "e", IDEMPOTENCY_KEY)
    await get_provider("telegram", "bot_api").send(message, case.adapter(base), ctx)
    assert "parse_mode" not in httpserver.log[0][0].json


async def test_telegram_permanent_error_hides_the_token(httpserver: HTTPServer, base, ctx):
    case = CASE_BY_ID["telegram"]
    FakeProvider(httpserver, case, "client_error")
    with pytest.raises(PermanentError) as info:
        await get_provider("telegram", "bot_api").send(case.message(base), case.adapter(base), ctx)
    assert "chat not found" in str(info.value)
    assert "ABC-DEF1234ghIkl" not in f"{info.value} {info.value.response!r}"


async def test_discord_does_not_ping_everyone_by_default(httpserver: HTTPServer, base, ctx):
    case = CASE_BY_ID["discord"]
    fake = FakeProvider(httpserver, case, "success")
    await get_provider("discord", "webhook").send(case.message(base), case.adapter(base), ctx)
    assert fake.requests[0]["body"]["allowed_mentions"] == {"parse": []}


async def test_teams_error_sentence_inside_a_200_fails(httpserver: HTTPServer, base, ctx):
    case = CASE_BY_ID["msteams"]
    httpserver.expect_request(case.path).respond_with_data(
        "Microsoft Teams endpoint returned HTTP error 429 with ContextId abc"
    )
    with pytest.raises(TransientError):
        await get_provider("msteams", "webhook").send(case.message(base), case.adapter(base), ctx)


async def test_teams_adaptive_card_format(httpserver: HTTPServer, base, ctx):
    case = CASE_BY_ID["msteams"]
    httpserver.expect_request(case.path).respond_with_data("", status=202)
    adapter = case.adapter(base)
    adapter = AdapterInfo(
        None, "t", "msteams", "webhook", adapter.credentials, {"format": "adaptive"}
    )
    await get_provider("msteams", "webhook").send(case.message(base), adapter, ctx)
    body = httpserver.log[0][0].json
    card = body["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard"
    assert [b["text"] for b in card["body"]] == ["Signup", "New signup: Ann"]


async def test_webhook_signature_uses_the_clock_and_stays_stable(httpserver, base):
    case = CASE_BY_ID["webhook"]
    httpserver.expect_request("/hooks/order").respond_with_data("", status=204)
    when = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    async with httpx2.AsyncClient() as client:
        ctx = DeliveryContext(http=client, clock=lambda: when)
        provider = get_provider("webhook", "http")
        message = Message(
            "webhook", f"{base}/hooks/order", {"body": {"a": 1, "b": "é"}}, "e", IDEMPOTENCY_KEY
        )
        for _ in range(2):  # a retry resends the same id, timestamp and signature
            result = await provider.send(message, case.adapter(base), ctx)
    (first, _), (second, _) = httpserver.log
    assert first.headers["webhook-timestamp"] == str(int(when.timestamp()))
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == IDEMPOTENCY_KEY
    assert first.headers["webhook-signature"] == second.headers["webhook-signature"]
    assert first.headers["Idempotency-Key"] == IDEMPOTENCY_KEY
    assert json.loads(first.get_data()) == {"a": 1, "b": "é"}
    verify_signature(WEBHOOK_SECRET, dict(first.headers), first.get_data(), now=when.timestamp())
    assert result.response is None


async def test_webhook_method_headers_and_secret_headers(httpserver: HTTPServer, base, ctx):
    httpserver.expect_request("/hooks/x", method="PUT").respond_with_data("teapot", status=418)
    adapter = AdapterInfo(
        None,
        "w",
        "webhook",
        "http",
        {"headers": {"Authorization": "Bearer hook-secret-123"}},
        {"headers": {"X-Source": "dripdrop"}, "base_url": base},
    )
    message = Message(
        "webhook",
        "/hooks/x",
        {"method": "put", "body": "hello", "headers": {"X-Step": "3"}},
        "e",
        IDEMPOTENCY_KEY,
    )
    with pytest.raises(PermanentError) as info:
        await get_provider("webhook", "http").send(message, adapter, ctx)
    request = httpserver.log[0][0]
    assert request.headers["Authorization"] == "Bearer hook-secret-123"
    assert request.headers["X-Source"] == "dripdrop"
    assert request.headers["X-Step"] == "3"
    assert "webhook-signature" not in request.headers  # no secret, no signature
    assert info.value.status == 418


async def test_webhook_timeout_is_transient(httpserver: HTTPServer, slow_handler, base, ctx):
    httpserver.expect_request("/slow").respond_with_handler(slow_handler(httpserver, 0.5))
    message = Message("webhook", f"{base}/slow", {"body": "{}", "timeout_ms": 100}, "e", "k")
    adapter = AdapterInfo(None, "w", "webhook", "http", {}, {})
    with pytest.raises(TransientError, match="timed out"):
        await get_provider("webhook", "http").send(message, adapter, ctx)


async def test_a_context_without_http_client_is_a_configuration_error(base):
    case = CASE_BY_ID["resend"]
    with pytest.raises(ConfigurationError):
        await get_provider("email", "resend").send(
            case.message(base), case.adapter(base), DeliveryContext()
        )
