"""``Secrets`` knows every form a credential travels in, whichever provider sent it."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from dripdrop.channels import AdapterInfo
from dripdrop.channels.http import basic_auth
from dripdrop.channels.secrets import Secrets
from dripdrop.errors import PermanentError, TransientError

KEY = "k3y/with+odd=chars&é"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "form",
    [
        KEY,
        quote(KEY, safe=""),
        quote(KEY),
        quote_plus(KEY),
        json.dumps(KEY)[1:-1],
        b64(KEY),
        base64.urlsafe_b64encode(KEY.encode()).decode().rstrip("="),
    ],
)
def test_each_encoding_of_a_registered_value_is_masked(form: str) -> None:
    assert Secrets([KEY]).scrub(f"<{form}>") == "<***>"


def test_the_basic_header_teaches_the_pair_and_its_password() -> None:
    secrets = Secrets()
    secrets.add_header("Authorization", basic_auth("AC0123", KEY))
    for shown in (b64(f"AC0123:{KEY}"), f"AC0123:{KEY}", KEY, quote(KEY, safe="")):
        assert secrets.scrub(f"echo {shown} done") == "echo *** done"
    assert secrets.scrub("account AC0123") == "account AC0123"  # the user is not a secret


def test_a_scheme_word_is_not_needed_to_mask_a_header_token() -> None:
    secrets = Secrets([{"Authorization": "Bearer abc.def-123"}])
    assert secrets.scrub("token=abc.def-123") == "token=***"
    assert secrets.scrub("Bearer abc.def-123") == "***"


def test_urls_mask_their_path_and_password() -> None:
    secrets = Secrets(["https://hooks.slack.com/services/T1/B2/xyz", "redis://:pw-9876@cache:6379"])
    assert secrets.scrub("POST /services/T1/B2/xyz failed") == "POST *** failed"
    assert secrets.scrub("auth pw-9876 refused") == "auth *** refused"


def test_smtp_auth_plain_is_masked() -> None:
    plain = f"\0user@example.com\0{KEY}"  # what AUTH PLAIN sends, base64-encoded
    secrets = Secrets()
    secrets.add(plain)
    assert secrets.scrub(f"535 {b64(plain)}") == "535 ***"


def test_of_an_adapter_takes_only_its_secret_fields() -> None:
    adapter = AdapterInfo(
        None, "t", "sms", "twilio", {"account_sid": "AC0123", "auth_token": "tok-9999"}, {}
    )
    secrets = Secrets.of(adapter)
    assert secrets.scrub("AC0123 tok-9999") == "AC0123 ***"
    unknown = AdapterInfo(None, "x", "sms", "no-such-provider", {"anything": "value-1"}, {})
    assert Secrets.of(unknown).scrub("value-1") == "***"


def test_keys_values_and_errors_are_scrubbed_and_nothing_shows_in_a_repr() -> None:
    secrets = Secrets(["tok-9999"])
    assert secrets.scrub({"tok-9999": ["a tok-9999", 3]}) == {"***": ["a ***", 3]}
    err = secrets.scrub_error(
        TransientError("x tok-9999", retry_after=4, response={"b": "tok-9999"}, status=503)
    )
    assert isinstance(err, TransientError)
    assert (str(err), err.response, err.retry_after, err.status) == ("x ***", {"b": "***"}, 4, 503)
    assert isinstance(secrets.scrub_error(PermanentError("tok-9999")), PermanentError)
    assert "tok-9999" not in repr(secrets)


def test_short_values_are_not_registered() -> None:
    assert Secrets(["abc", ""]).scrub("abc") == "abc"
