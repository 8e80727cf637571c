"""The smtp provider behind the outbound guard (issue 11): the relay ``host`` obeys the same
policy as HTTP, AUTH never travels in clear text, certificates are always verified, and the
To recipient is exactly one address."""

from __future__ import annotations

from typing import Any

import pytest

from dripdrop.channels import get_provider, validate_adapter
from dripdrop.channels.base import AdapterInfo, DeliveryContext, Message
from dripdrop.channels.providers.email_smtp import SmtpConfig, SmtpCredentials, adapter_errors
from dripdrop.errors import OutboundBlocked, PermanentError, ValidationError
from dripdrop.net import OutboundPolicy, create_http_client

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

LOCAL = OutboundPolicy(allow_private_network=True)


def _adapter(host: str, port: int, creds: dict[str, Any] | None = None, **config: Any) -> Any:
    cfg = {
        "host": host,
        "port": port,
        "security": "none",
        "timeout": 5,
        "from": "news@example.com",
        "local_hostname": "dripdrop.test",  # no getfqdn lookup of our own
    } | config
    return AdapterInfo("a1", "relay", "email", "smtp", creds or {}, cfg)


def _message(to: Any = "ann@example.org") -> Message:
    return Message("email", to, {"subject": "Hi", "text": "Hello"}, "exec-1", "k-1")


async def _send(adapter: AdapterInfo, policy: OutboundPolicy | None, to: Any = None) -> Any:
    message = _message() if to is None else _message(to)
    provider = get_provider("email", "smtp")
    if policy is None:  # no worker client at all: the strictest policy applies
        return await provider.send(message, adapter, DeliveryContext())
    async with create_http_client(policy) as client:
        return await provider.send(message, adapter, DeliveryContext(http=client))


# --- the relay host goes through the guard ------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0x7f.1", "::1", "::ffff:127.0.0.1"])
@pytest.mark.parametrize("policy", [OutboundPolicy(), None], ids=["default-policy", "no-client"])
async def test_loopback_relay_is_refused_before_connecting(
    smtp_server, connects, host: str, policy: OutboundPolicy | None
) -> None:
    recorder, port = smtp_server()
    connects.clear()  # the controller's own start-up probe
    with pytest.raises(OutboundBlocked, match="loopback"):
        await _send(_adapter(host, port), policy)
    assert connects == [] and recorder.messages == []


@pytest.mark.parametrize("host", ["10.0.0.1", "192.168.1.1", "169.254.169.254", "fd00::1"])
async def test_private_relay_is_refused_before_connecting(connects, host: str) -> None:
    with pytest.raises(OutboundBlocked):
        await _send(_adapter(host, 25), OutboundPolicy())
    assert connects == []


async def test_a_name_resolving_to_any_private_address_is_refused(fake_dns, connects) -> None:
    fake_dns({"relay.test": [["93.184.216.34", "10.0.0.5"]]})
    with pytest.raises(OutboundBlocked, match=r"'relay\.test' \(10\.0\.0\.5\).*private"):
        await _send(_adapter("relay.test", 25), OutboundPolicy())
    assert connects == []


@pytest.mark.parametrize(
    "host", ["::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::", "fd00:ec2::254"]
)
async def test_metadata_relay_is_refused_even_with_private_network(connects, host: str) -> None:
    with pytest.raises(OutboundBlocked, match="cloud metadata"):
        await _send(_adapter(host, 25), LOCAL)
    assert connects == []


@pytest.mark.parametrize(
    "policy",
    [OutboundPolicy(allowlist=("127.0.0.1/32",)), LOCAL],
    ids=["allowlist", "allow_private_network"],
)
async def test_allowlist_and_private_network_reach_the_local_relay(
    smtp_server, policy: OutboundPolicy
) -> None:
    recorder, port = smtp_server()
    result = await _send(_adapter("127.0.0.1", port), policy)
    assert result.status == "sent" and len(recorder.messages) == 1


async def test_relay_name_is_resolved_once_and_the_vetted_address_is_used(
    smtp_server, fake_dns, connects
) -> None:
    recorder, port = smtp_server()
    connects.clear()
    # A second lookup would answer a private address (DNS rebinding): there must be none.
    lookups = fake_dns({"relay.test": [["127.0.0.1"], ["10.0.0.5"]]})
    policy = OutboundPolicy(allowlist=("127.0.0.1/32",))
    result = await _send(_adapter("relay.test", port), policy)
    assert result.status == "sent" and len(recorder.messages) == 1
    assert lookups == ["relay.test"]
    assert connects == [("127.0.0.1", port)]


# --- AUTH and TLS ---------------------------------------------------------------------------


async def test_auth_over_a_plain_connection_is_refused_even_on_loopback(
    smtp_server, connects
) -> None:
    recorder, port = smtp_server(auth=True)  # a relay that would accept AUTH in clear text
    connects.clear()
    creds = {"username": "mailer", "password": "s3cret"}
    with pytest.raises(PermanentError, match=r"config\.security") as info:
        await _send(_adapter("127.0.0.1", port, creds), LOCAL)
    assert "s3cret" not in str(info.value)
    assert connects == [] and recorder.logins == [] and recorder.messages == []


def test_adapter_errors_name_the_security_field() -> None:
    creds = SmtpCredentials(username="mailer", password="s3cret")
    plain = SmtpConfig(host="smtp.example.com", security="none")
    assert list(adapter_errors(creds, plain)) == ["config.security"]
    assert adapter_errors(SmtpCredentials(), plain) == {}
    assert adapter_errors(creds, SmtpConfig(host="smtp.example.com")) == {}


def test_validate_certs_false_is_refused_at_adapter_validation() -> None:
    with pytest.raises(ValidationError) as info:
        validate_adapter("email", "smtp", {}, {"host": "smtp.example.com", "validate_certs": False})
    assert list(info.value.errors) == ["config.validate_certs"]
    _, config = validate_adapter("email", "smtp", {}, {"host": "smtp.example.com"})
    assert config["validate_certs"] is True


async def test_a_stored_adapter_with_validate_certs_false_fails_permanently(
    smtp_server, tls_context, connects
) -> None:
    recorder, port = smtp_server(starttls=tls_context)
    connects.clear()
    adapter = _adapter("127.0.0.1", port, security="starttls", validate_certs=False)
    with pytest.raises(PermanentError, match="validate_certs"):
        await _send(adapter, LOCAL)
    assert connects == [] and recorder.messages == []


# --- the To recipient is exactly one address ----------------------------------------------


@pytest.mark.parametrize(
    "to",
    [
        "a@x.com, b@y.com",
        "a@x.com; b@y.com",
        "a@x.com\nb@y.com",
        "a@x.com\r\nBcc: b@y.com",
        "a@x.com b@y.com",
        "alice@x.com)<bob@y.com>",
        "team: a@x.com, b@y.com;",
        ["a@x.com", "b@y.com"],
    ],
)
async def test_a_recipient_with_several_addresses_is_refused(smtp_server, to: Any) -> None:
    recorder, port = smtp_server()
    with pytest.raises(PermanentError, match="recipient 'to'"):
        await _send(_adapter("127.0.0.1", port), LOCAL, to=to)
    assert recorder.messages == []


@pytest.mark.parametrize(
    ("to", "envelope"),
    [
        ("Ann <ann@example.org>", "ann@example.org"),
        ('"Doe, John" <j@example.org>', "j@example.org"),
    ],
)
async def test_one_address_with_a_display_name_is_sent(smtp_server, to: str, envelope: str) -> None:
    recorder, port = smtp_server()
    await _send(_adapter("127.0.0.1", port), LOCAL, to=to)
    [got] = recorder.messages
    assert got.recipients == [envelope]
