"""Every provider's webhook through the real web app against real PostgreSQL: a message is sent
through the provider's fake API (so its execution holds the id the provider answered), then the
provider's documented event payload about it arrives, signed the documented way."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from inbound_support import PROVIDERS, Keys, build

from dripdrop.inbound.message_ids import message_id_key

ALL = pytest.mark.parametrize("provider", list(PROVIDERS))
# What each provider's fake send API answered first (conftest._answer), as stored.
EXPECTED_ID = {
    "mailgun": "20261130.1@mg.example.com",  # Mailgun answers "<…>"; its webhooks say "…"
    "sendgrid": "W86EgYT6SQKk0lRflfLRs1",  # the X-Message-Id header
    "postmark": "b7bc2f4a-e38e-4336-af7d-e6c392c2f001",
    "resend": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e001",
    "amazon_ses": "0100018b2f3c4d5e-00000001-000000",
    "twilio": "SM" + "0" * 31 + "1",
}


def url_of(provider: str, adapter_id: Any) -> str:
    return f"http://testserver/inbound/{provider}/{adapter_id}"


def post(client: Any, provider: str, adapter_id: Any, request: Any, **headers: str) -> Any:
    return client.post(
        f"/inbound/{provider}/{adapter_id}",
        content=request.body,
        headers={**request.headers, **headers},
    )


def webhook(
    provider: str,
    kind: str,
    keys: Any,
    execution: Any,
    adapter_id: Any,
    cert_url: str = "",
    **kw: Any,
) -> Any:
    return build(
        provider,
        kind,
        keys,
        message_id=execution.provider_message_id,
        recipient=execution.recipient,
        url=url_of(provider, adapter_id),
        cert_url=cert_url,
        **kw,
    )


@pytest.fixture
def cert_url(request: Any) -> str:
    """The SNS certificate URL for amazon_ses cases (the local server, trusted); else ""."""
    if request.node.callspec.params.get("provider") == "amazon_ses":
        return request.getfixturevalue("local_sns")
    return ""


@ALL
def test_a_send_stores_the_id_the_provider_answered(provider, send, client, dd) -> None:
    execution = send(provider)
    assert execution.provider_message_id == EXPECTED_ID[provider]
    assert execution.delivery_status is None
    key = dd.create_api_key("r", scopes=["read"])
    answer = client.get(
        f"/api/v1/executions/{execution.id}", headers={"Authorization": f"Bearer {key.secret}"}
    )
    assert answer.status_code == 200
    assert answer.json()["provider_message_id"] == EXPECTED_ID[provider]
    assert answer.json()["delivery_status"] is None


@ALL
def test_a_hard_bounce_is_recorded_and_suppresses_the_address(
    provider, send, client, dd, keys, cert_url
) -> None:
    execution = send(provider)
    adapter = send.adapters[provider]
    channel = PROVIDERS[provider].channel
    assert not dd.is_suppressed(channel, execution.recipient)
    answer = post(
        client,
        provider,
        adapter.id,
        webhook(provider, "hard_bounce", keys, execution, adapter.id, cert_url),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "received": 1,
        "recorded": 1,
        "duplicates": 0,
        "unmatched": 0,
        "suppressed": 1,
    }
    (event,) = dd.list_delivery_events(execution.id)
    assert event.type == "bounced"
    assert event.provider == provider
    assert event.adapter_id == adapter.id
    assert "signature" not in str(event.data).lower()
    assert dd.get_execution(execution.id).delivery_status == "bounced"
    assert dd.is_suppressed(channel, execution.recipient)
    (row,) = [s for s in dd.list_suppressions() if s.channel == channel]
    assert row.reason == "bounce"
    # Suppressions are recipient-normalised: Mailgun's "Alice@Example.com" is alice@example.com.
    if channel == "email":
        assert row.recipient == execution.recipient.lower()


@ALL
def test_a_redelivered_event_is_stored_once(provider, send, client, dd, keys, cert_url) -> None:
    execution = send(provider)
    adapter = send.adapters[provider]
    request = webhook(provider, "hard_bounce", keys, execution, adapter.id, cert_url)
    first = post(client, provider, adapter.id, request)
    again = post(client, provider, adapter.id, request)
    assert first.json()["recorded"] == 1
    assert again.status_code == 200
    assert again.json()["recorded"] == 0 and again.json()["duplicates"] == 1
    assert again.json()["suppressed"] == 0, "a duplicate has no consequences"
    assert len(dd.list_delivery_events(execution.id)) == 1


@ALL
def test_a_bad_signature_is_refused_logged_without_the_body_and_stores_nothing(
    provider, send, client, dd, keys, cert_url, caplog
) -> None:
    execution = send(provider)
    adapter = send.adapters[provider]
    channel = PROVIDERS[provider].channel
    if provider in ("mailgun", "postmark"):
        # Their signature (Mailgun: timestamp + token) or credentials (Postmark) do not cover
        # the body: forged means signed with other keys.
        request = webhook(provider, "hard_bounce", Keys.generate(), execution, adapter.id, cert_url)
        victim = execution.recipient
    else:
        request = webhook(provider, "hard_bounce", keys, execution, adapter.id, cert_url)
        # The signed body with the recipient swapped: the signature no longer covers it.
        victim = "victim@example.org" if channel == "email" else "+14155559999"
        forged = request.body.replace(execution.recipient.encode(), victim.encode()).replace(
            execution.recipient.replace("+", "%2B").encode(), victim.replace("+", "%2B").encode()
        )
        assert forged != request.body
        request.body = forged
    with caplog.at_level(logging.WARNING, logger="dripdrop.inbound"):
        answer = post(client, provider, adapter.id, request)
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert dd.list_delivery_events(execution.id) == []
    assert dd.get_execution(execution.id).delivery_status is None
    assert not dd.is_suppressed(channel, victim)
    assert "refused" in caplog.text
    assert victim not in caplog.text and victim.lstrip("+") not in caplog.text


@ALL
def test_an_unsigned_request_is_refused(provider, send, client, dd, keys, cert_url) -> None:
    execution = send(provider)
    adapter = send.adapters[provider]
    request = webhook(provider, "hard_bounce", keys, execution, adapter.id, cert_url)
    signing = {
        "mailgun": None,  # the signature lives in the body
        "sendgrid": "X-Twilio-Email-Event-Webhook-Signature",
        "postmark": "Authorization",
        "resend": "svix-signature",
        "twilio": "X-Twilio-Signature",
        "amazon_ses": None,
    }[provider]
    if signing:
        request.headers.pop(signing)
    else:
        import json

        payload = json.loads(request.body)
        payload.pop("signature" if provider == "mailgun" else "Signature")
        request.body = json.dumps(payload).encode()
    answer = post(client, provider, adapter.id, request)
    assert answer.status_code == 401
    assert dd.list_delivery_events(execution.id) == []
    assert not dd.is_suppressed(PROVIDERS[provider].channel, execution.recipient)


@ALL
def test_an_unknown_message_id_is_accepted_and_counted(
    provider, send, client, dd, keys, cert_url
) -> None:
    execution = send(provider)
    adapter = send.adapters[provider]
    other = type(execution)(
        **{
            **{f: getattr(execution, f) for f in execution.__dataclass_fields__},
            "provider_message_id": "SMffffffffffffffffffffffffffffffff"
            if provider == "twilio"
            else "never-sent-here@mg.example.com",
        }
    )
    answer = post(
        client,
        provider,
        adapter.id,
        webhook(provider, "hard_bounce", keys, other, adapter.id, cert_url),
    )
    assert answer.status_code == 200
    assert answer.json()["unmatched"] == 1 and answer.json()["recorded"] == 0
    assert not dd.is_suppressed(PROVIDERS[provider].channel, execution.recipient)


@pytest.mark.parametrize("provider", ["mailgun", "sendgrid", "postmark", "resend", "amazon_ses"])
def test_a_complaint_suppresses_with_reason_complaint(
    provider, send, client, dd, keys, cert_url
) -> None:
    execution = send(provider)
    adapter = send.adapters[provider]
    answer = post(
        client,
        provider,
        adapter.id,
        webhook(provider, "complaint", keys, execution, adapter.id, cert_url),
    )
    assert answer.json()["recorded"] == 1, answer.text
    assert dd.get_execution(execution.id).delivery_status == "complained"
    (row,) = dd.list_suppressions()
    assert row.reason == "complaint"


@pytest.mark.parametrize("provider", ["mailgun", "sendgrid", "postmark", "resend"])
def test_status_only_moves_to_a_stronger_one(provider, send, client, dd, keys, cert_url) -> None:
    execution = send(provider)
    adapter = send.adapters[provider]
    for kind, expected in (("opened", "opened"), ("delivered", "opened")):
        answer = post(
            client,
            provider,
            adapter.id,
            webhook(provider, kind, keys, execution, adapter.id, cert_url),
        )
        assert answer.json()["recorded"] == 1, answer.text
        assert dd.get_execution(execution.id).delivery_status == expected
    assert [e.type for e in dd.list_delivery_events(execution.id)] in (
        ["opened", "delivered"],
        ["delivered", "opened"],  # ordered by when they happened
    )
    assert dd.list_suppressions() == []


def test_unknown_adapter_and_provider_mismatch_are_404(send, client, keys) -> None:
    execution = send("mailgun")
    adapter = send.adapters["mailgun"]
    request = webhook("mailgun", "hard_bounce", keys, execution, adapter.id)
    assert (
        post(client, "mailgun", "0190a4b2-0000-7000-8000-000000000000", request).status_code == 404
    )
    assert post(client, "mailgun", "not-a-uuid", request).status_code == 404
    assert post(client, "sendgrid", adapter.id, request).status_code == 404
    assert post(client, "smtp", adapter.id, request).status_code == 404


def test_message_id_keys_meet_whatever_the_quoting() -> None:
    assert message_id_key("<20261130.1@mg.example.com>") == "20261130.1@mg.example.com"
    assert message_id_key(" 20261130.1@mg.example.com ") == "20261130.1@mg.example.com"
    assert message_id_key("") is None and message_id_key(None) is None
