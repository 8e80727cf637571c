"""What recording an event does beyond storing it (soft-bounce threshold, one transaction), and
each provider's particular rules: old timestamps, SNS certificates and subscriptions, Twilio's
URL behind a proxy, the body cap, and the Python entry point."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from inbound_support import (
    TOPIC_ARN,
    Keys,
    build,
    mailgun_event,
    mailgun_post,
    resend_payload,
    resend_post,
    sendgrid_event,
    sendgrid_post,
    ses_notification,
    sns_notification,
    sns_post,
    twilio_form,
    twilio_post,
)
from sqlalchemy import text

from dripdrop.errors import NotFound, ValidationError
from dripdrop.inbound.context import InboundContext


def post(client: Any, provider: str, adapter_id: Any, request: Any, **headers: str) -> Any:
    return client.post(
        f"/inbound/{provider}/{adapter_id}",
        content=request.body,
        headers={**request.headers, **headers},
    )


def bounce(provider: str, kind: str, keys: Keys, execution: Any, **kw: Any) -> Any:
    return build(
        provider,
        kind,
        keys,
        message_id=execution.provider_message_id,
        recipient=execution.recipient,
        url="",
        **kw,
    )


# --- soft bounces --------------------------------------------------------------------------


def test_soft_bounces_suppress_at_the_threshold_counting_messages_not_events(
    send, client, dd, keys
) -> None:
    adapter_id = None
    for n in range(1, 4):
        execution = send("sendgrid", recipient="Full@Example.com")
        adapter_id = send.adapters["sendgrid"].id
        # The same message soft-bouncing twice (retries at the provider) counts once.
        for _ in range(2):
            answer = post(
                client, "sendgrid", adapter_id, bounce("sendgrid", "soft_bounce", keys, execution)
            )
            assert answer.json()["recorded"] == 1, answer.text
        assert dd.get_execution(execution.id).delivery_status == "soft_bounced"
        assert dd.is_suppressed("email", "full@example.com") is (n == 3), n
    (row,) = dd.list_suppressions()
    assert row.reason == "bounce"


def test_the_soft_bounce_threshold_is_the_adapters(send, client, dd, keys) -> None:
    first = send("mailgun", recipient="a@example.com", config={"soft_bounce_limit": 1})
    answer = post(
        client,
        "mailgun",
        send.adapters["mailgun"].id,
        bounce("mailgun", "soft_bounce", keys, first),
    )
    assert answer.json()["suppressed"] == 1
    assert dd.is_suppressed("email", "a@example.com")


def test_the_soft_bounce_settings_are_validated(dd) -> None:
    with pytest.raises(ValidationError) as caught:
        dd.create_channel_adapter(
            name="m",
            channel="email",
            provider="mailgun",
            credentials={"api_key": "k", "domain": "mg.example.com"},
            config={"soft_bounce_limit": 0},
        )
    assert "config.soft_bounce_limit" in caught.value.errors


# --- one transaction -----------------------------------------------------------------------


def test_no_suppression_without_its_event(send, client, dd, keys) -> None:
    """The event insert fails at commit (a deferred trigger): the suppression written in the
    same transaction, before it, is rolled back with it."""
    execution = send("postmark")
    schema = dd.schema
    with dd.runtime.engine.begin() as conn:
        conn.execute(
            text(f"""
            CREATE FUNCTION "{schema}".refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'delivery_events refused'; END $$;
            CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON "{schema}".delivery_events
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "{schema}".refuse_event();
        """)
        )
    from fastapi.testclient import TestClient

    with TestClient(client.app, raise_server_exceptions=False) as c:
        answer = post(
            c,
            "postmark",
            send.adapters["postmark"].id,
            bounce("postmark", "hard_bounce", keys, execution),
        )
    assert answer.status_code == 500
    assert dd.list_delivery_events(execution.id) == []
    assert not dd.is_suppressed("email", execution.recipient)
    assert dd.get_execution(execution.id).delivery_status is None


# --- replays and age -----------------------------------------------------------------------


def test_old_signed_timestamps_are_refused(send, client, dd, keys) -> None:
    old = int(time.time()) - 3600
    mg = send("mailgun")
    sg = send("sendgrid")
    rs = send("resend")
    cases = [
        (
            "mailgun",
            mg,
            mailgun_post(
                keys.mailgun,
                mailgun_event("hard_bounce", mg.provider_message_id, mg.recipient, "e1"),
                timestamp=old,
            ),
        ),
        (
            "sendgrid",
            sg,
            sendgrid_post(
                keys.sendgrid_private,
                [sendgrid_event("hard_bounce", sg.provider_message_id, sg.recipient, "e2")],
                timestamp=old,
            ),
        ),
        (
            "resend",
            rs,
            resend_post(
                keys.resend,
                resend_payload("hard_bounce", rs.provider_message_id, rs.recipient),
                "msg_e3",
                timestamp=old,
            ),
        ),
    ]
    for provider, execution, request in cases:
        answer = post(client, provider, send.adapters[provider].id, request)
        assert answer.status_code == 401, provider
        assert dd.list_delivery_events(execution.id) == []
    assert dd.list_suppressions() == []


def test_postmark_accepts_its_token_header_instead_of_basic_auth(send, client, dd, keys) -> None:
    from inbound_support import postmark_post, postmark_record

    execution = send("postmark")
    record = postmark_record("delivered", execution.provider_message_id, execution.recipient, "7")
    adapter_id = send.adapters["postmark"].id
    assert (
        post(client, "postmark", adapter_id, postmark_post(keys, record, use="none")).status_code
        == 401
    )
    answer = post(client, "postmark", adapter_id, postmark_post(keys, record, use="token"))
    assert answer.json()["recorded"] == 1
    assert dd.get_execution(execution.id).delivery_status == "delivered"


def test_an_oversized_body_is_refused_before_it_is_read(send, client) -> None:
    send("mailgun")
    answer = client.post(
        f"/inbound/mailgun/{send.adapters['mailgun'].id}",
        content=b"[" + b" " * (5 * 1024 * 1024) + b"]",
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 413


# --- Amazon SES through SNS ----------------------------------------------------------------


def test_sns_signature_versions_1_and_2_and_the_certificate_is_fetched_once(
    send, client, dd, keys, local_sns, send_api
) -> None:
    for version in ("1", "2"):
        execution = send("amazon_ses")
        message = sns_notification(
            ses_notification("delivered", execution.provider_message_id, execution.recipient)
        )
        answer = post(
            client,
            "amazon_ses",
            send.adapters["amazon_ses"].id,
            sns_post(keys, message, local_sns, version=version),
        )
        assert answer.json()["recorded"] == 1, answer.text
        assert dd.get_execution(execution.id).delivery_status == "delivered"
    fetches = [r for r, _ in send_api.log if r.path.endswith(".pem")]
    assert len(fetches) == 1, "the certificate is cached"


def test_sns_refuses_another_topic_and_another_key(send, client, dd, keys, local_sns) -> None:
    execution = send("amazon_ses")
    adapter_id = send.adapters["amazon_ses"].id
    notification = ses_notification(
        "hard_bounce", execution.provider_message_id, execution.recipient
    )
    other_topic = sns_notification(notification, "arn:aws:sns:us-east-1:999999999999:evil")
    assert (
        post(client, "amazon_ses", adapter_id, sns_post(keys, other_topic, local_sns)).status_code
        == 401
    )
    forged = sns_post(
        keys, sns_notification(notification), local_sns, private=Keys.generate().sns_private
    )
    assert post(client, "amazon_ses", adapter_id, forged).status_code == 401
    assert dd.list_delivery_events(execution.id) == []
    assert not dd.is_suppressed("email", execution.recipient)


def test_production_trusts_only_aws_sns_hosts_over_https(send, client, dd, keys, send_api) -> None:
    """Without the test's override, a certificate URL on any other host is refused before
    anything is fetched."""
    execution = send("amazon_ses")
    cert = send_api.url_for("/SimpleNotificationService-0123456789abcdef.pem")
    message = sns_notification(
        ses_notification("hard_bounce", execution.provider_message_id, execution.recipient)
    )
    answer = post(
        client, "amazon_ses", send.adapters["amazon_ses"].id, sns_post(keys, message, cert)
    )
    assert answer.status_code == 401
    assert not [r for r, _ in send_api.log if r.path.endswith(".pem")]
    ctx = InboundContext(dd.runtime.policy)
    for url in (
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
    ):
        assert ctx.check_sns_url(url, "SigningCertURL") == url
    for url in (
        "http://sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com.evil.io/x.pem",
        "https://evil.io/sns.us-east-1.amazonaws.com/x.pem",
        "https://s3.us-east-1.amazonaws.com/x.pem",
        "https://user:pw@sns.us-east-1.amazonaws.com/x.pem",
    ):
        with pytest.raises(Exception, match="SigningCertURL"):
            ctx.check_sns_url(url, "SigningCertURL")


def test_sns_subscription_is_confirmed_through_the_guard(
    send, client, dd, keys, local_sns, send_api
) -> None:
    send("amazon_ses")
    subscribe = send_api.url_for("/") + "?Action=ConfirmSubscription&TopicArn=x&Token=abc"
    message = {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a7",
        "TopicArn": TOPIC_ARN,
        "Message": "You have chosen to subscribe to the topic. To confirm, visit SubscribeURL.",
        "SubscribeURL": subscribe,
        "Timestamp": "2026-11-30T08:00:00.000Z",
    }
    answer = post(
        client, "amazon_ses", send.adapters["amazon_ses"].id, sns_post(keys, message, local_sns)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["received"] == 0
    confirmations = [r for r, _ in send_api.log if r.args.get("Action") == "ConfirmSubscription"]
    assert len(confirmations) == 1 and confirmations[0].args["Token"] == "abc"


def test_ses_notifications_without_a_topic_configured_are_refused(
    dd, send, client, keys, local_sns
) -> None:
    execution = send("amazon_ses", config={})
    dd.update_channel_adapter(send.adapters["amazon_ses"].id, config={"region": "us-east-1"})
    message = sns_notification(
        ses_notification("hard_bounce", execution.provider_message_id, execution.recipient)
    )
    answer = post(
        client, "amazon_ses", send.adapters["amazon_ses"].id, sns_post(keys, message, local_sns)
    )
    assert answer.status_code == 401


# --- Twilio --------------------------------------------------------------------------------


def test_twilio_status_callback_url_is_sent_and_checked(send, client, dd, keys, send_api) -> None:
    public = "https://app.example.com/dripdrop/inbound/twilio/{id}"
    execution = send("twilio")
    adapter = send.adapters["twilio"]
    url = public.format(id=adapter.id)
    dd.update_channel_adapter(
        adapter.id,
        config={
            "from": "+15017122661",
            "status_callback_url": url,
            "base_url": send_api.url_for("").rstrip("/"),
        },
    )
    second = send("twilio")
    sends = [r for r, _ in send_api.log if r.path.endswith("/Messages.json")]
    assert "StatusCallback" not in sends[0].form
    assert sends[-1].form["StatusCallback"] == url
    form = twilio_form("delivered", second.provider_message_id, second.recipient)
    # Signed for the app's own URL, not the configured public one: refused.
    wrong = twilio_post(keys.twilio, f"http://testserver/inbound/twilio/{adapter.id}", form)
    assert post(client, "twilio", adapter.id, wrong).status_code == 401
    answer = post(client, "twilio", adapter.id, twilio_post(keys.twilio, url, form))
    assert answer.json()["recorded"] == 1
    assert dd.get_execution(second.id).delivery_status == "delivered"
    assert dd.get_execution(execution.id).delivery_status is None


def test_twilio_behind_a_proxy_is_checked_against_the_forwarded_url(send, client, dd, keys) -> None:
    execution = send("twilio")
    adapter = send.adapters["twilio"]
    url = f"https://sms.example.com/inbound/twilio/{adapter.id}"
    form = twilio_form("unsubscribe", execution.provider_message_id, execution.recipient)
    request = twilio_post(keys.twilio, url, form)
    assert post(client, "twilio", adapter.id, request).status_code == 401
    answer = post(
        client,
        "twilio",
        adapter.id,
        request,
        **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sms.example.com"},
    )
    assert answer.json()["recorded"] == 1
    assert dd.get_execution(execution.id).delivery_status == "unsubscribed"
    (row,) = dd.list_suppressions()
    assert (row.channel, row.recipient, row.reason) == ("sms", "+14155550100", "unsubscribe")


# --- the Python entry point ----------------------------------------------------------------


def test_record_delivery_events_for_apps_with_their_own_endpoint(send, dd) -> None:
    execution = send("resend")
    adapter_id = send.adapters["resend"].id
    events = [
        {
            "type": "delivered",
            "provider_message_id": execution.provider_message_id,
            "provider_event_id": "evt_1",
            "occurred_at": "2026-11-30T09:00:00Z",
        },
        {
            "type": "complained",
            "provider_message_id": execution.provider_message_id,
            "provider_event_id": "evt_2",
            "recipient": execution.recipient,
            "data": {"why": "x"},
        },
        {"type": "opened", "provider_message_id": "nobody", "provider_event_id": "evt_3"},
    ]
    result = dd.record_delivery_events("resend", adapter_id, events)
    assert (result.received, result.recorded, result.unmatched, result.suppressed) == (3, 2, 1, 1)
    again = dd.record_delivery_events("resend", adapter_id, events)
    assert (again.recorded, again.duplicates) == (0, 2)
    assert dd.get_execution(execution.id).delivery_status == "complained"
    types = [e.type for e in dd.list_delivery_events(execution.id)]
    assert sorted(types) == ["complained", "delivered"]
    (row,) = dd.list_executions(execution.enrollment_id)
    assert row.delivery_status == "complained"


@pytest.mark.parametrize(
    ("events", "field"),
    [
        ("nope", "events"),
        (
            [{"type": "exploded", "provider_message_id": "m", "provider_event_id": "e"}],
            "events.0.type",
        ),
        ([{"type": "opened", "provider_event_id": "e"}], "events.0.provider_message_id"),
        (
            [
                {
                    "type": "opened",
                    "provider_message_id": "m",
                    "provider_event_id": "e",
                    "occurred_at": "yesterday",
                }
            ],
            "events.0.occurred_at",
        ),
        (
            [{"type": "opened", "provider_message_id": "m", "provider_event_id": "e", "oops": 1}],
            "events.0.oops",
        ),
    ],
)
def test_record_delivery_events_names_the_bad_field(send, dd, events, field) -> None:
    send("resend")
    with pytest.raises(ValidationError) as caught:
        dd.record_delivery_events("resend", send.adapters["resend"].id, events)
    assert field in caught.value.errors


def test_record_delivery_events_checks_the_adapter(send, dd) -> None:
    send("resend")
    with pytest.raises(ValidationError) as caught:
        dd.record_delivery_events("mailgun", send.adapters["resend"].id, [])
    assert "provider" in caught.value.errors
    with pytest.raises(NotFound):
        dd.record_delivery_events("resend", uuid.uuid4(), [])


def test_stored_event_data_has_no_clicked_link_query(send) -> None:
    execution = send("mailgun")
    from dripdrop.inbound.mailgun import parse

    event_data = mailgun_event("opened", execution.provider_message_id, execution.recipient, "c1")
    event_data.update(event="clicked", url="https://app.example.com/reset?token=s3cret#x")
    (event,) = parse({"event-data": event_data})
    assert event.data["url"] == "https://app.example.com/reset"
    assert "s3cret" not in json.dumps(event.data)


# --- the consequence -----------------------------------------------------------------------


def test_after_a_hard_bounce_the_next_message_to_the_address_is_not_sent(
    send, client, dd, keys, send_api
) -> None:
    execution = send("postmark", recipient="gone@example.com")
    answer = post(
        client,
        "postmark",
        send.adapters["postmark"].id,
        bounce("postmark", "hard_bounce", keys, execution),
    )
    assert answer.json()["suppressed"] == 1
    sends_before = len([r for r, _ in send_api.log if r.path == "/email"])
    enrollment = dd.enroll(
        "s_postmark", {"type": "User", "id": 999}, data={"email": "Gone@Example.com"}
    )
    dd.run_due()
    (skipped,) = dd.list_executions(enrollment.id)
    assert skipped.state == "skipped"
    assert "bounce" in (skipped.error_message or "")
    assert len([r for r, _ in send_api.log if r.path == "/email"]) == sends_before


def test_the_rest_api_shows_delivery_status_and_events(send, client, dd, keys) -> None:
    execution = send("sendgrid")
    other = send("sendgrid")
    post(
        client,
        "sendgrid",
        send.adapters["sendgrid"].id,
        bounce("sendgrid", "hard_bounce", keys, execution),
    )
    key = dd.create_api_key("r", scopes=["read"])
    auth = {"Authorization": f"Bearer {key.secret}"}
    page = client.get("/api/v1/executions?delivery_status=bounced", headers=auth).json()
    assert [item["id"] for item in page["items"]] == [str(execution.id)]
    assert page["items"][0]["delivery_status"] == "bounced"
    assert client.get("/api/v1/executions?delivery_status=nope", headers=auth).status_code == 422
    events = client.get(f"/api/v1/executions/{execution.id}/delivery-events", headers=auth)
    assert events.status_code == 200
    (item,) = events.json()["items"]
    assert (item["type"], item["provider"]) == ("bounced", "sendgrid")
    assert events.json()["next_cursor"] is None
    none = client.get(f"/api/v1/executions/{other.id}/delivery-events", headers=auth).json()
    assert none["items"] == []
    tenant_key = dd.create_api_key("t", scopes=["read"], tenant_key="acme")
    hidden = client.get(
        f"/api/v1/executions/{execution.id}/delivery-events",
        headers={"Authorization": f"Bearer {tenant_key.secret}"},
    )
    assert hidden.status_code == 404


def test_a_nul_in_a_providers_text_is_stored_cleaned_not_refused(send, client, dd, keys) -> None:
    from inbound_support import postmark_post, postmark_record

    execution = send("postmark")
    record = postmark_record(
        "hard_bounce", execution.provider_message_id, execution.recipient, "11"
    )
    record["Description"] = "unknown\x00user"
    answer = post(client, "postmark", send.adapters["postmark"].id, postmark_post(keys, record))
    assert answer.status_code == 200, answer.text
    (event,) = dd.list_delivery_events(execution.id)
    assert event.data["description"] == "unknown\ufffduser"
