"""Email over SMTP (``smtp``): STARTTLS, implicit TLS or plain, with optional AUTH.

Uses :mod:`aiosmtplib`. SMTP reply codes decide the outcome: 4xx and network failures are
transient, 5xx are permanent. The Message-ID (stable per idempotency key) is the provider id.
"""

from __future__ import annotations

import ssl
from email.utils import getaddresses, parseaddr
from typing import Any, Literal

import aiosmtplib
from pydantic import Field

from dripdrop.channels.base import (
    AdapterInfo,
    DeliveryContext,
    DeliveryResult,
    Fields,
    Message,
    ProviderSpec,
)
from dripdrop.channels.emailfmt import build_mime
from dripdrop.channels.registry import register
from dripdrop.errors import DeliveryError, PermanentError, TransientError

_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class SmtpCredentials(Fields):
    """AUTH credentials; both empty means no AUTH."""

    username: str | None = None
    password: str | None = None


class SmtpConfig(Fields):
    """Where and how to connect. ``port`` defaults by ``security`` (587, 465 or 25)."""

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    timeout: float = Field(default=30, gt=0)
    # Only for test servers and private relays with self-signed certificates.
    validate_certs: bool = True
    local_hostname: str | None = None
    unsubscribe_url: str | None = None


def _addresses(*values: Any) -> list[str]:
    """Bare addr-specs from header-style values (strings or lists of strings)."""
    flat: list[str] = []
    for value in values:
        if not value:
            continue
        flat.extend([value] if isinstance(value, str) else [str(v) for v in value])
    return [addr for _, addr in getaddresses(flat) if addr]


def _reply(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def _classify(exc: BaseException) -> DeliveryError:
    """Map an aiosmtplib (or socket) failure to TransientError or PermanentError."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # Permanent only when every recipient was refused for good.
        replies = [_reply(r.code, r.message) | {"recipient": r.recipient} for r in exc.recipients]
        text = "; ".join(f"{r['recipient']}: {r['code']} {r['message']}" for r in replies)
        first = replies[0] if replies else _reply(0, "")
        response = {**first, "recipients": replies}
        if all(r["code"] >= 500 for r in replies):
            return PermanentError(
                f"SMTP recipients refused: {text}", response=response, status=first["code"]
            )
        return TransientError(
            f"SMTP recipients deferred: {text}", response=response, status=first["code"]
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        response = _reply(exc.code, exc.message)
        text = f"SMTP {exc.code} {exc.message}"
        if 400 <= exc.code < 500:
            return TransientError(text, response=response, status=exc.code)
        if exc.code >= 500:
            return PermanentError(text, response=response, status=exc.code)
        # A reply outside 4xx/5xx is a broken or non-SMTP peer: worth another try.
        return TransientError(text, response=response, status=exc.code)
    if isinstance(exc, ssl.SSLCertVerificationError) or isinstance(
        exc.__cause__, ssl.SSLCertVerificationError
    ):
        # The relay's certificate is not trusted; this needs configuration, not a retry.
        return PermanentError(f"SMTP TLS certificate not trusted: {exc}")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return TransientError(f"SMTP timeout: {exc}")
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected | OSError):
        return TransientError(f"SMTP connection failed: {exc}")
    # SMTPNotSupported and friends: STARTTLS or AUTH missing on the server — configuration.
    return PermanentError(f"SMTP error: {exc}")


class SmtpProvider:
    """Sends one email through an SMTP relay per delivery."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Build the MIME message and hand it to the relay."""
        config = SmtpConfig.model_validate(adapter.config)
        creds = SmtpCredentials.model_validate(adapter.credentials)
        mime = build_mime(message, adapter)
        fields = message.fields
        sender = parseaddr(str(mime["From"]))[1]
        recipients = _addresses(mime["To"], mime["Cc"], fields.get("bcc"))
        if not sender or not recipients:
            raise PermanentError("no valid sender or recipient address")
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port or _DEFAULT_PORTS[config.security],
            username=creds.username or None,
            password=creds.password if creds.username else None,
            local_hostname=config.local_hostname,
            timeout=config.timeout,
            use_tls=config.security == "ssl",
            start_tls=config.security == "starttls",
            validate_certs=config.validate_certs,
        )
        try:
            async with client:
                refused, reply = await client.send_message(
                    mime, sender=sender, recipients=recipients
                )
        except Exception as exc:
            raise _classify(exc) from exc
        # aiosmtplib only returns after a 250 to DATA; recipients refused among several are listed.
        response: dict[str, Any] = _reply(250, reply)
        if refused:
            response["refused"] = {k: _reply(v.code, v.message) for k, v in refused.items()}
        return DeliveryResult(
            provider_message_id=str(mime["Message-ID"]), status="sent", response=response
        )


register(
    ProviderSpec(
        "email",
        "smtp",
        SmtpCredentials,
        SmtpConfig,
        SmtpProvider,
        "Any SMTP relay (STARTTLS, implicit TLS or plain; optional AUTH)",
        secret_fields=("password",),
    )
)
