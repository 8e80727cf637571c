"""The smtp provider against a real aiosmtpd server on 127.0.0.1.

The relay is local, so deliveries run with ``allow_private_network=True`` (the guard refuses
loopback otherwise: see test_smtp_guard.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from dripdrop.channels import get_provider, validate_adapter
from dripdrop.channels.base import AdapterInfo, DeliveryContext, Message
from dripdrop.errors import PermanentError, TransientError, ValidationError
from dripdrop.net import OutboundPolicy, create_http_client

LOCAL = OutboundPolicy(allow_private_network=True)

# Some tests run aiosmtpd with AUTH allowed before TLS, to show the client never uses it.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def _adapter(port: int, creds: dict[str, Any] | None = None, **config: Any) -> AdapterInfo:
    cfg = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "timeout": 5,
        "from": "DripDrop <news@example.com>",
    } | config
    return AdapterInfo(
        id="a1", name="relay", channel="email", provider="smtp", credentials=creds or {}, config=cfg
    )


def _message(key: str = "exec-42", **fields: Any) -> Message:
    base = {
        "subject": "Welcome aboard",
        "body": "<h1>Hello</h1><p>Start <a href='https://app.example.com/start'>here</a>.</p>",
        "text": "Hello\n\nStart here: https://app.example.com/start",
        "reply_to": "support@example.com",
        "unsubscribe_url": "https://app.example.com/unsub/42",
    }
    return Message("email", "ann@example.org", base | fields, "exec-42", key)


async def _send(message: Message, adapter: AdapterInfo, policy: OutboundPolicy = LOCAL) -> Any:
    # The worker's context: its guarded client carries the instance's outbound policy.
    async with create_http_client(policy) as client:
        return await get_provider("email", "smtp").send(
            message, adapter, DeliveryContext(http=client)
        )


async def test_message_arrives_with_headers_and_alternatives(smtp_server) -> None:
    recorder, port = smtp_server()
    result = await _send(_message(), _adapter(port))
    assert result.status == "sent"
    assert result.provider_message_id == "<exec-42@example.com>"
    assert result.response["code"] == 250 and "queued as abc123" in result.response["message"]

    [got] = recorder.messages
    assert got.sender == "news@example.com"
    assert got.recipients == ["ann@example.org"]
    msg = got.message
    assert msg["From"] == "DripDrop <news@example.com>"
    assert msg["To"] == "ann@example.org"
    assert msg["Subject"] == "Welcome aboard"
    assert msg["Reply-To"] == "support@example.com"
    assert msg["Message-ID"] == "<exec-42@example.com>"
    assert msg["List-Unsubscribe"] == "<https://app.example.com/unsub/42>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = list(msg.iter_parts())
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content().strip() == "Hello\n\nStart here: https://app.example.com/start"
    assert html.get_content_type() == "text/html"
    assert "<h1>Hello</h1>" in html.get_content()


async def test_text_part_is_derived_from_html(smtp_server) -> None:
    recorder, port = smtp_server()
    await _send(_message(text=None, body="<p>Hi &amp; <b>bye</b><br>now</p>"), _adapter(port))
    plain = recorder.messages[0].message.get_body(("plain",))
    assert plain.get_content().strip() == "Hi & bye\nnow"


async def test_cc_and_bcc_reach_the_envelope_but_bcc_is_not_a_header(smtp_server) -> None:
    recorder, port = smtp_server()
    await _send(_message(cc=["c@example.org"], bcc="Hidden <h@example.org>"), _adapter(port))
    [got] = recorder.messages
    assert got.recipients == ["ann@example.org", "c@example.org", "h@example.org"]
    assert got.message["Cc"] == "c@example.org"
    assert got.message["Bcc"] is None


async def test_same_idempotency_key_gives_same_message_id(smtp_server) -> None:
    recorder, port = smtp_server()
    first = await _send(_message(key="k-7"), _adapter(port))
    second = await _send(_message(key="k-7"), _adapter(port))
    other = await _send(_message(key="k-8"), _adapter(port))
    assert first.provider_message_id == second.provider_message_id == "<k-7@example.com>"
    assert other.provider_message_id != first.provider_message_id
    ids = [m.message["Message-ID"] for m in recorder.messages]
    assert ids == ["<k-7@example.com>", "<k-7@example.com>", "<k-8@example.com>"]


async def test_auth_failure_is_permanent(smtp_server, tls_context, trusted_tls) -> None:
    recorder, port = smtp_server(auth=True, starttls=tls_context, auth_require_tls=True)
    creds = {"username": "mailer", "password": "wrong"}
    with pytest.raises(PermanentError) as info:
        await _send(_message(), _adapter(port, creds, security="starttls"))
    assert info.value.response["code"] == 535
    assert "535" in str(info.value)
    assert recorder.messages == []


async def test_starttls_with_auth(smtp_server, tls_context, trusted_tls) -> None:
    # aiosmtpd's default: AUTH only after TLS.
    recorder, port = smtp_server(auth=True, starttls=tls_context, auth_require_tls=True)
    creds = {"username": "mailer", "password": "s3cret"}
    await _send(_message(), _adapter(port, creds, security="starttls"))
    assert recorder.logins == [("mailer", "s3cret")]
    assert len(recorder.messages) == 1


async def test_starttls_verifies_certificates_by_default(smtp_server, tls_context) -> None:
    recorder, port = smtp_server(starttls=tls_context)
    with pytest.raises(PermanentError, match="certificate"):
        await _send(_message(), _adapter(port, security="starttls"))
    assert recorder.messages == []


async def test_implicit_tls(smtp_server, tls_context, trusted_tls) -> None:
    recorder, port = smtp_server(implicit_tls=tls_context)
    await _send(_message(), _adapter(port, security="ssl"))
    assert len(recorder.messages) == 1


async def test_rejected_mailbox_is_permanent(smtp_server) -> None:
    recorder, port = smtp_server()
    recorder.rcpt_reply = "550 5.1.1 mailbox unavailable"
    with pytest.raises(PermanentError) as info:
        await _send(_message(), _adapter(port))
    assert info.value.response["code"] == 550
    assert "mailbox unavailable" in info.value.response["message"]
    assert "550" in str(info.value)


async def test_greylisting_is_transient(smtp_server) -> None:
    recorder, port = smtp_server()
    recorder.data_reply = "451 4.7.1 greylisted, try again later"
    with pytest.raises(TransientError) as info:
        await _send(_message(), _adapter(port))
    assert info.value.response == {"code": 451, "message": "4.7.1 greylisted, try again later"}


async def test_deferred_recipient_is_transient(smtp_server) -> None:
    recorder, port = smtp_server()
    recorder.rcpt_reply = "452 4.2.2 mailbox full"
    with pytest.raises(TransientError) as info:
        await _send(_message(), _adapter(port))
    assert info.value.status == 452


async def test_refused_connection_is_transient(closed_port: int) -> None:
    with pytest.raises(TransientError, match="connection"):
        await _send(_message(), _adapter(closed_port))


async def test_header_injection_is_permanent_and_nothing_is_sent(smtp_server) -> None:
    recorder, port = smtp_server()
    with pytest.raises(PermanentError):
        await _send(_message(subject="Hi\r\nBcc: victim@example.net"), _adapter(port))
    assert recorder.messages == []


def test_adapter_validation() -> None:
    creds, config = validate_adapter(
        "email",
        "smtp",
        {"username": "u", "password": "p"},
        {"host": "smtp.example.com", "from": "a@example.com"},
    )
    assert config["security"] == "starttls" and config["validate_certs"] is True
    assert config["from"] == "a@example.com"
    assert creds == {"username": "u", "password": "p"}
    with pytest.raises(ValidationError) as info:
        validate_adapter("email", "smtp", {}, {"security": "tls-ish"})
    assert set(info.value.errors) == {"config.host", "config.security"}
