"""The Apprise provider against a local JSON endpoint, and the provider declarations."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from pytest_httpserver import HTTPServer

from dripdrop.channels import AdapterInfo, Message, all_specs, get_provider, validate_adapter
from dripdrop.errors import PermanentError, TransientError, ValidationError

HTTP_PROVIDERS = {
    ("email", "mailgun"): "https://api.mailgun.net",
    ("email", "sendgrid"): "https://api.sendgrid.com",
    ("email", "postmark"): "https://api.postmarkapp.com",
    ("email", "resend"): "https://api.resend.com",
    ("sms", "twilio"): "https://api.twilio.com",
    ("sms", "vonage"): "https://rest.nexmo.com",
    ("slack", "bot_api"): "https://slack.com",
    ("telegram", "bot_api"): "https://api.telegram.org",
    # The URL is the credential; base_url only re-points it.
    ("webhook", "http"): None,
    ("slack", "webhook"): None,
    ("discord", "webhook"): None,
    ("msteams", "webhook"): None,
}


def _apprise(url: str) -> AdapterInfo:
    return AdapterInfo(None, "a", "apprise", "apprise", {"url": url}, {})


def _message() -> Message:
    return Message("apprise", None, {"title": "Signup", "body": "Ann joined"}, "e", "k")


# The JSON endpoint is on 127.0.0.1: these run with loopback allow-listed (local_ctx); the
# guard itself is tested in test_providers_outbound_paths.py.
async def test_apprise_delivers_to_a_json_url(httpserver: HTTPServer, local_ctx):
    httpserver.expect_request("/notify", method="POST").respond_with_data("ok")
    host = urlsplit(httpserver.url_for("/")).netloc
    result = await get_provider("apprise", "apprise").send(
        _message(), _apprise(f"json://{host}/notify"), local_ctx
    )
    assert result.status == "sent"
    sent = httpserver.log[0][0].json
    assert (sent["title"], sent["message"]) == ("Signup", "Ann joined")


async def test_apprise_failure_is_transient_and_hides_the_url(httpserver: HTTPServer, local_ctx):
    httpserver.expect_request("/notify").respond_with_data("down", status=500)
    url = f"json://user:s3cretpass@{urlsplit(httpserver.url_for('/')).netloc}/notify"
    with pytest.raises(TransientError) as info:
        await get_provider("apprise", "apprise").send(_message(), _apprise(url), local_ctx)
    assert "s3cretpass" not in str(info.value)


async def test_apprise_rejects_an_unknown_scheme(ctx):
    with pytest.raises(PermanentError, match="not a valid Apprise URL"):
        await get_provider("apprise", "apprise").send(_message(), _apprise("nope://x"), ctx)


def test_apprise_url_is_required():
    with pytest.raises(ValidationError) as info:
        validate_adapter("apprise", "apprise", {}, {})
    assert info.value.errors == {"credentials.url": ["is required"]}


@pytest.mark.parametrize(
    ("key", "default"), HTTP_PROVIDERS.items(), ids=["/".join(k) for k in HTTP_PROVIDERS]
)
def test_http_providers_declare_base_url_and_secrets(key, default):
    spec = {(s.channel, s.name): s for s in all_specs()}[key]
    assert spec.config.model_fields["base_url"].default == default
    assert spec.secret_fields
    assert set(spec.secret_fields) <= set(spec.credentials.model_fields)
    assert spec.description


def test_webhook_signing_secret_is_checked_on_create():
    with pytest.raises(ValidationError) as info:
        validate_adapter("webhook", "http", {"signing_secret": "whsec_%%%"}, {})
    assert list(info.value.errors) == ["credentials.signing_secret"]
    assert "%%%" not in str(info.value)


def test_email_config_keeps_the_from_key():
    _, config = validate_adapter(
        "email",
        "postmark",
        {"server_token": "t"},
        {"from": "a@example.com", "message_stream": "broadcast"},
    )
    assert config["from"] == "a@example.com"
    assert config["message_stream"] == "broadcast"
