"""The contract table: one :class:`Case` per HTTP provider, with each API's real answer shapes."""

from __future__ import annotations

from typing import Any

from harness import IDEMPOTENCY_KEY, Answer, Case, basic_auth, bearer, header_equals, no_auth
from werkzeug import Request

from dripdrop.channels.webhook_signing import WebhookVerificationError, verify_signature

EMAIL_FIELDS = {
    "subject": "Welcome, Ann",
    "body": "<p>Hello <b>Ann</b></p>",
    "from": "DripDrop <hello@mail.example.com>",
    "unsubscribe_url": "https://example.com/u/ann",
}
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TG_TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
SLACK_HOOK_PATH = "/services/T0001/B0001/XXXXXXXXsecretXXXXXXXX"
DISCORD_HOOK_PATH = "/api/webhooks/1234567890/s3cr3t-discord-token"
TEAMS_HOOK_PATH = "/webhookb2/abc@def/IncomingWebhook/0123secret4567/ghi"


def _idempotency_header(request: Request, body: Any) -> str | None:
    if request.headers.get("Idempotency-Key") != IDEMPOTENCY_KEY:
        return "Idempotency-Key missing"
    return None


def _signed(request: Request, body: Any) -> str | None:
    # The receiving side, exactly as a user's endpoint would check us.
    try:
        verify_signature(WEBHOOK_SECRET, dict(request.headers), request.get_data())
    except WebhookVerificationError as exc:
        return f"signature: {exc}"
    if request.headers.get("webhook-id") != IDEMPOTENCY_KEY:
        return "webhook-id is not the idempotency key"
    return None


CASES = [
    Case(
        id="mailgun",
        channel="email",
        provider="mailgun",
        credentials={"api_key": "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"},
        config={"domain": "mg.example.com", "base_url": "{base}"},
        recipient="ann@example.com",
        fields=EMAIL_FIELDS,
        path="/v3/mg.example.com/messages",
        auth=basic_auth("api", "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"),
        content_type="form",
        required=("from", "to", "subject", "html", "text"),
        success=Answer(200, {"id": "<20240101.1@mg.example.com>", "message": "Queued. Thank you."}),
        expected_id="<20240101.1@mg.example.com>",
        client_error=Answer(400, {"message": "'to' parameter is not a valid address."}),
        unauthorized=Answer(401, "Forbidden"),
        not_found=Answer(404, {"message": "Domain not found: mg.example.com"}),
        rate_limited=Answer(429, {"message": "Too many requests"}, {"Retry-After": "7"}),
        expected_retry_after=7.0,
        bad_credentials={"api_key": "key-wrong"},
        secrets=("key-3ax6xnjp29jd6fds4gc373sgvjxteol0",),
        required_credential="api_key",
    ),
    Case(
        id="sendgrid",
        channel="email",
        provider="sendgrid",
        credentials={"api_key": "SG.ngeVfQFYQlKU0ufo8x5d1A.TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc"},
        config={"base_url": "{base}"},
        recipient="ann@example.com",
        fields=EMAIL_FIELDS,
        path="/v3/mail/send",
        auth=bearer("SG.ngeVfQFYQlKU0ufo8x5d1A.TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc"),
        content_type="json",
        required=("personalizations", "from", "subject", "content"),
        success=Answer(202, "", {"X-Message-Id": "W86EgYT6SQKk0lRflfLRsA"}),
        expected_id="W86EgYT6SQKk0lRflfLRsA",
        client_error=Answer(
            400,
            {
                "errors": [
                    {"message": "The from object must be provided.", "field": "from", "help": None}
                ]
            },
        ),
        unauthorized=Answer(
            401,
            {
                "errors": [
                    {
                        "message": "The provided authorization grant is "
                        "invalid, expired, or revoked",
                        "field": None,
                    }
                ]
            },
        ),
        rate_limited=Answer(
            429, {"errors": [{"message": "too many requests"}]}, {"Retry-After": "3"}
        ),
        expected_retry_after=3.0,
        bad_credentials={"api_key": "SG.wrong"},
        secrets=("SG.ngeVfQFYQlKU0ufo8x5d1A.TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc",),
        required_credential="api_key",
    ),
    Case(
        id="postmark",
        channel="email",
        provider="postmark",
        credentials={"server_token": "b8b7a1e3-0000-4a5b-9c6d-postmarksecret"},
        config={"base_url": "{base}"},
        recipient="ann@example.com",
        fields=EMAIL_FIELDS,
        path="/email",
        auth=header_equals("X-Postmark-Server-Token", "b8b7a1e3-0000-4a5b-9c6d-postmarksecret"),
        content_type="json",
        required=("From", "To", "Subject", "HtmlBody", "MessageStream"),
        success=Answer(
            200,
            {
                "To": "ann@example.com",
                "SubmittedAt": "2024-01-01T10:00:00Z",
                "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
                "ErrorCode": 0,
                "Message": "OK",
            },
        ),
        expected_id="b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
        client_error=Answer(
            422,
            {
                "ErrorCode": 406,
                "Message": "You tried to send to recipient(s) that have been marked as inactive.",
            },
        ),
        unauthorized=Answer(
            401,
            {
                "ErrorCode": 10,
                "Message": "The Server Token you provided "
                "in the X-Postmark-Server-Token request header was invalid.",
            },
        ),
        rate_limited=Answer(
            429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, {"Retry-After": "2"}
        ),
        expected_retry_after=2.0,
        bad_credentials={"server_token": "not-the-token"},
        secrets=("b8b7a1e3-0000-4a5b-9c6d-postmarksecret",),
        required_credential="server_token",
    ),
    Case(
        id="resend",
        channel="email",
        provider="resend",
        credentials={"api_key": "re_123456789_secretResendKey"},
        config={"base_url": "{base}"},
        recipient="ann@example.com",
        fields=EMAIL_FIELDS,
        path="/emails",
        auth=bearer("re_123456789_secretResendKey"),
        content_type="json",
        required=("from", "to", "subject", "html"),
        verify=_idempotency_header,
        success=Answer(200, {"id": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"}),
        expected_id="49a3999c-0ce1-4ea6-ab68-afcd6dc2e794",
        client_error=Answer(
            422, {"statusCode": 422, "name": "validation_error", "message": "Invalid `to` field."}
        ),
        unauthorized=Answer(
            403, {"statusCode": 403, "name": "invalid_api_key", "message": "API key is invalid"}
        ),
        rate_limited=Answer(
            429,
            {"statusCode": 429, "name": "rate_limit_exceeded", "message": "Too many requests."},
            {"Retry-After": "1"},
        ),
        expected_retry_after=1.0,
        bad_credentials={"api_key": "re_wrong"},
        secrets=("re_123456789_secretResendKey",),
        required_credential="api_key",
    ),
    Case(
        id="twilio",
        channel="sms",
        provider="twilio",
        credentials={"account_sid": "AC0123456789abcdef", "auth_token": "twilio-auth-token-42"},
        config={"from": "+15005550006", "base_url": "{base}"},
        recipient="+15558675310",
        fields={"body": "Your code is 1234"},
        path="/2010-04-01/Accounts/AC0123456789abcdef/Messages.json",
        auth=basic_auth("AC0123456789abcdef", "twilio-auth-token-42"),
        content_type="form",
        required=("To", "From", "Body"),
        success=Answer(
            201,
            {
                "sid": "SM0123456789abcdef0123456789abcdef",
                "status": "queued",
                "to": "+15558675310",
                "from": "+15005550006",
            },
        ),
        expected_id="SM0123456789abcdef0123456789abcdef",
        client_error=Answer(
            400,
            {
                "code": 21211,
                "message": "The 'To' number is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211",
                "status": 400,
            },
        ),
        unauthorized=Answer(401, {"code": 20003, "message": "Authenticate", "status": 401}),
        not_found=Answer(
            404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
        ),
        rate_limited=Answer(
            429,
            {"code": 20429, "message": "Too Many Requests", "status": 429},
            {"Retry-After": "5"},
        ),
        expected_retry_after=5.0,
        bad_credentials={"auth_token": "wrong-token"},
        secrets=("twilio-auth-token-42",),
        required_credential="auth_token",
    ),
    Case(
        id="vonage",
        channel="sms",
        provider="vonage",
        credentials={"api_key": "abcd1234", "api_secret": "vonage-secret-9f8e"},
        config={"from": "DripDrop", "base_url": "{base}"},
        recipient="447700900000",
        fields={"body": "Your code is 1234"},
        path="/sms/json",
        auth=lambda r: (
            r.form.get("api_key") == "abcd1234" and r.form.get("api_secret") == "vonage-secret-9f8e"
        ),
        content_type="form",
        required=("from", "to", "text"),
        success=Answer(
            200,
            {
                "message-count": "1",
                "messages": [
                    {
                        "to": "447700900000",
                        "message-id": "0A0000000123ABCD1",
                        "status": "0",
                        "remaining-balance": "3.14",
                        "message-price": "0.033",
                        "network": "23410",
                    }
                ],
            },
        ),
        expected_id="0A0000000123ABCD1",
        # Vonage refuses inside a 200: status 3 = invalid parameters.
        client_error=Answer(
            200,
            {
                "message-count": "1",
                "messages": [{"status": "3", "error-text": "Invalid to address"}],
            },
        ),
        unauthorized=Answer(
            200,
            {"message-count": "1", "messages": [{"status": "4", "error-text": "Bad Credentials"}]},
        ),
        rate_limited=Answer(429, "Too Many Requests", {"Retry-After": "1"}),
        expected_retry_after=1.0,
        bad_credentials={"api_secret": "wrong"},
        secrets=("vonage-secret-9f8e",),
        required_credential="api_secret",
    ),
    Case(
        id="webhook",
        channel="webhook",
        provider="http",
        credentials={"signing_secret": WEBHOOK_SECRET},
        config={"timeout_ms": 5000},
        recipient="{base}/hooks/order",
        fields={"body": '{"event": "order_completed", "order": 7}'},
        path="/hooks/order",
        auth=no_auth,
        content_type="json",
        required=("event",),
        verify=_signed,
        success=Answer(200, {"received": True}),
        expected_id=IDEMPOTENCY_KEY,
        client_error=Answer(422, {"error": "unknown order"}),
        unauthorized=Answer(401, "invalid signature"),
        rate_limited=Answer(429, "slow down", {"Retry-After": "11"}),
        expected_retry_after=11.0,
        bad_credentials={"signing_secret": "whsec_" + "QUJDREVGR0hJSktMTU5PUA=="},
        secrets=(WEBHOOK_SECRET,),
    ),
    Case(
        id="slack_webhook",
        channel="slack",
        provider="webhook",
        credentials={"webhook_url": "{base}" + SLACK_HOOK_PATH},
        config={},
        recipient=None,
        fields={"text": "New signup: Ann"},
        path=SLACK_HOOK_PATH,
        auth=no_auth,
        content_type="json",
        required=("text",),
        success=Answer(200, "ok"),
        expected_id=None,
        client_error=Answer(400, "invalid_payload"),
        unauthorized=Answer(404, "no_service"),
        rate_limited=Answer(429, "rate_limited", {"Retry-After": "30"}),
        expected_retry_after=30.0,
        bad_credentials={"webhook_url": "{base}/services/T0001/B0001/revoked"},
        secrets=(SLACK_HOOK_PATH,),
        required_credential="webhook_url",
    ),
    Case(
        id="slack_bot",
        channel="slack",
        provider="bot_api",
        credentials={"bot_token": "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"},
        config={"base_url": "{base}"},
        recipient="C0123456",
        fields={"text": "New signup: Ann"},
        path="/api/chat.postMessage",
        auth=bearer("xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"),
        content_type="json",
        required=("channel", "text"),
        success=Answer(
            200,
            {
                "ok": True,
                "channel": "C0123456",
                "ts": "1503435956.000247",
                "message": {"text": "New signup: Ann"},
            },
        ),
        expected_id="1503435956.000247",
        # chat.postMessage reports errors inside HTTP 200.
        client_error=Answer(200, {"ok": False, "error": "channel_not_found"}),
        unauthorized=Answer(200, {"ok": False, "error": "invalid_auth"}),
        not_found=Answer(404, {"ok": False, "error": "unknown_method"}),
        rate_limited=Answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}),
        expected_retry_after=30.0,
        bad_credentials={"bot_token": "xoxb-revoked"},
        secrets=("xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",),
        required_credential="bot_token",
    ),
    Case(
        id="telegram",
        channel="telegram",
        provider="bot_api",
        credentials={"bot_token": TG_TOKEN},
        config={"base_url": "{base}"},
        recipient="987654321",
        fields={"text": "*New* signup"},
        path=f"/bot{TG_TOKEN}/sendMessage",
        auth=no_auth,
        content_type="json",
        required=("chat_id", "text", "parse_mode"),
        success=Answer(
            200,
            {
                "ok": True,
                "result": {"message_id": 4242, "date": 1700000000, "chat": {"id": 987654321}},
            },
        ),
        expected_id="4242",
        client_error=Answer(
            400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
        ),
        unauthorized=Answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"}),
        not_found=Answer(404, {"ok": False, "error_code": 404, "description": "Not Found"}),
        # Telegram puts the wait in the body, not in a Retry-After header.
        rate_limited=Answer(
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 17",
                "parameters": {"retry_after": 17},
            },
        ),
        expected_retry_after=17.0,
        bad_credentials={"bot_token": "123456:revoked"},
        secrets=(TG_TOKEN,),
        required_credential="bot_token",
    ),
    Case(
        id="discord",
        channel="discord",
        provider="webhook",
        credentials={"webhook_url": "{base}" + DISCORD_HOOK_PATH},
        config={},
        recipient=None,
        fields={"text": "New signup: Ann"},
        path=DISCORD_HOOK_PATH,
        query={"wait": "true"},
        auth=no_auth,
        content_type="json",
        required=("content",),
        success=Answer(200, {"id": "1180000000000000001", "type": 0, "content": "New signup"}),
        expected_id="1180000000000000001",
        client_error=Answer(400, {"code": 50006, "message": "Cannot send an empty message"}),
        unauthorized=Answer(404, {"code": 10015, "message": "Unknown Webhook"}),
        # The body's retry_after is more precise than the rounded header.
        rate_limited=Answer(
            429,
            {"message": "You are being rate limited.", "retry_after": 2.5, "global": False},
            {"Retry-After": "3"},
        ),
        expected_retry_after=2.5,
        bad_credentials={"webhook_url": "{base}/api/webhooks/1234567890/revoked"},
        secrets=(DISCORD_HOOK_PATH,),
        required_credential="webhook_url",
    ),
    Case(
        id="msteams",
        channel="msteams",
        provider="webhook",
        credentials={"webhook_url": "{base}" + TEAMS_HOOK_PATH},
        config={},
        recipient=None,
        fields={"title": "Signup", "text": "New signup: Ann"},
        path=TEAMS_HOOK_PATH,
        auth=no_auth,
        content_type="json",
        required=("@type", "text"),
        success=Answer(200, "1"),
        expected_id=None,
        client_error=Answer(400, "Bad payload received by generic incoming webhook."),
        unauthorized=Answer(404, "Webhook not found"),
        rate_limited=Answer(429, "Too many requests", {"Retry-After": "4"}),
        expected_retry_after=4.0,
        bad_credentials={"webhook_url": "{base}/webhookb2/abc@def/IncomingWebhook/gone/ghi"},
        secrets=(TEAMS_HOOK_PATH,),
        required_credential="webhook_url",
    ),
]

CASE_BY_ID = {case.id: case for case in CASES}
