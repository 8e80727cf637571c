"""Email through Mailgun's HTTP API (``POST /v3/{domain}/messages``, form-encoded).

EU accounts set ``config.base_url`` to ``https://api.eu.mailgun.net``. The sending domain is
``config.domain`` or, as the seed writes it, ``credentials.domain``; given in both places, the two
must agree.
"""

from __future__ import annotations

from typing import Any

from dripdrop.channels.base import (
    AdapterInfo,
    DeliveryContext,
    DeliveryResult,
    Fields,
    Message,
    ProviderSpec,
)
from dripdrop.channels.http import Secrets, basic_auth, error_for, load, parse_body, send, url_join
from dripdrop.channels.memo import PerObject
from dripdrop.channels.providers._email import EmailConfig, build_email
from dripdrop.channels.registry import register
from dripdrop.errors import PermanentError

API = "https://api.mailgun.net"


class MailgunCredentials(Fields):
    api_key: str
    # The seed keeps the sending domain with the key; config.domain is the other place for it.
    domain: str | None = None
    # The HTTP webhook signing key: verifies /inbound/mailgun/<adapter id> (dripdrop.inbound).
    webhook_signing_key: str | None = None


class MailgunConfig(EmailConfig):
    domain: str | None = None
    base_url: str | None = API


def check_domain(credentials: dict[str, Any], config: dict[str, Any]) -> dict[str, list[str]]:
    """Errors by field when the sending domain is in neither place, or in both but different.

    Messages never show the values (credentials are never echoed).
    """
    in_config, in_credentials = config.get("domain"), credentials.get("domain")
    if not in_config and not in_credentials:
        return {"config.domain": ["is required (here or as credentials.domain)"]}
    if in_config and in_credentials and str(in_config).lower() != str(in_credentials).lower():
        return {"config.domain": ["disagrees with credentials.domain: give the domain once"]}
    return {}


def sending_domain(credentials: MailgunCredentials, config: MailgunConfig) -> str:
    """The domain to send from; PermanentError for an adapter stored without a usable one."""
    # Parsed credentials and config are kept per adapter (channels.http.load): so is this.
    return _domains.get((credentials, config), lambda: _checked_domain(credentials, config))


def _checked_domain(credentials: MailgunCredentials, config: MailgunConfig) -> str:
    problems = check_domain(credentials.model_dump(), config.model_dump())
    if problems:
        raise PermanentError(f"mailgun adapter: config.domain {problems['config.domain'][0]}")
    return config.domain or credentials.domain  # type: ignore[return-value]


_domains = PerObject()


def _detail(body: Any) -> str | None:
    if isinstance(body, dict):
        return body.get("message")
    return body if isinstance(body, str) else None


class MailgunProvider:
    """Sends one email per delivery; the answer's ``id`` is the Message-ID Mailgun kept."""

    # Checked when an adapter is created or updated (rules spanning credentials and config).
    check_adapter = staticmethod(check_domain)

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Post the email as Mailgun form fields; raise Transient/PermanentError on failure."""
        creds = load(MailgunCredentials, adapter.credentials, "credentials")
        config = load(MailgunConfig, adapter.config, "config")
        secrets = Secrets.of(adapter)
        email = build_email(message, adapter)
        data: dict[str, Any] = {
            "from": email.sender,
            "to": email.to,
            "subject": email.subject,
            "text": email.text,
            # Our stable Message-ID makes a retried send recognisable downstream.
            "h:Message-Id": email.message_id,
        }
        if email.html:
            data["html"] = email.html
        if email.cc:
            data["cc"] = email.cc
        if email.bcc:
            data["bcc"] = email.bcc
        if email.reply_to:
            data["h:Reply-To"] = ", ".join(email.reply_to)
        for name, value in email.headers.items():
            data[f"h:{name}"] = value
        domain = sending_domain(creds, config)
        url = url_join(config.base_url or API, f"/v3/{domain}/messages")
        response = await send(
            ctx,
            "POST",
            url,
            secrets=secrets,
            label="mailgun",
            headers={"Authorization": basic_auth("api", creds.api_key)},
            data=data,
            timeout_ms=config.timeout_ms,
        )
        body = parse_body(response)
        if response.status_code >= 300:
            raise error_for(response, secrets=secrets, label="mailgun", detail=_detail(body))
        msg_id = body.get("id") if isinstance(body, dict) else None
        return DeliveryResult(provider_message_id=msg_id, status="sent", response=body)


register(
    ProviderSpec(
        "email",
        "mailgun",
        MailgunCredentials,
        MailgunConfig,
        MailgunProvider,
        "Mailgun HTTP API (US or EU region via base_url); `domain` in credentials or config",
        secret_fields=("api_key", "webhook_signing_key"),
    )
)
