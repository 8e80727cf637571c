"""Standard Webhooks signing: the spec's published vector, and verification for receivers."""

from __future__ import annotations

import pytest

from dripdrop.channels.webhook_signing import (
    WebhookVerificationError,
    sign,
    signature_headers,
    verify_signature,
)
from dripdrop.errors import ValidationError

# From standard-webhooks/libraries/python/tests/test_webhooks.py (test_sign_function).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
PAYLOAD = '{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_published_test_vector():
    assert sign(SECRET, MSG_ID, TIMESTAMP, PAYLOAD) == EXPECTED


def test_secret_prefix_is_optional_and_bytes_bodies_sign_the_same():
    assert sign(SECRET.removeprefix("whsec_"), MSG_ID, TIMESTAMP, PAYLOAD.encode()) == EXPECTED


def test_verify_accepts_the_vector_within_tolerance():
    headers = {
        "Webhook-Id": MSG_ID,
        "Webhook-Timestamp": str(TIMESTAMP),
        "Webhook-Signature": EXPECTED,
    }
    verify_signature(SECRET, headers, PAYLOAD, now=TIMESTAMP + 299)


def test_verify_accepts_any_of_several_signatures():
    headers = signature_headers(SECRET, MSG_ID, TIMESTAMP, PAYLOAD)
    headers["webhook-signature"] = (
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,xyz " + EXPECTED
    )
    verify_signature(SECRET, headers, PAYLOAD, now=TIMESTAMP)


@pytest.mark.parametrize(
    "change",
    [
        lambda h, b: (h, b + " "),  # body tampered
        lambda h, b: ({**h, "webhook-id": "msg_other"}, b),  # id swapped
        lambda h, b: ({**h, "webhook-timestamp": str(TIMESTAMP + 1)}, b),  # timestamp moved
        lambda h, b: (
            {**h, "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="},
            b,
        ),
        lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b),
        lambda h, b: ({**h, "webhook-timestamp": "hello"}, b),
    ],
)
def test_verify_rejects_tampering_and_bad_headers(change):
    headers, body = change(signature_headers(SECRET, MSG_ID, TIMESTAMP, PAYLOAD), PAYLOAD)
    with pytest.raises(WebhookVerificationError):
        verify_signature(SECRET, headers, body, now=TIMESTAMP)


@pytest.mark.parametrize("skew", [-301, 301])
def test_verify_rejects_timestamps_outside_the_tolerance(skew):
    headers = signature_headers(SECRET, MSG_ID, TIMESTAMP, PAYLOAD)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_signature(SECRET, headers, PAYLOAD, now=TIMESTAMP + skew)


def test_verify_with_another_secret_fails():
    headers = signature_headers(SECRET, MSG_ID, TIMESTAMP, PAYLOAD)
    with pytest.raises(WebhookVerificationError):
        verify_signature("whsec_QUJDREVGR0hJSktMTU5PUA==", headers, PAYLOAD, now=TIMESTAMP)


def test_a_secret_that_is_not_base64_is_a_validation_error():
    with pytest.raises(ValidationError) as info:
        sign("whsec_not base64!", MSG_ID, TIMESTAMP, PAYLOAD)
    assert "signing_secret" in info.value.errors
