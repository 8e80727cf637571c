"""Email over SMTP (``smtp``): STARTTLS, implicit TLS or plain, with optional AUTH.

Uses :mod:`aiosmtplib`. SMTP reply codes decide the outcome: 4xx and network failures are
transient, 5xx are permanent. The Message-ID (stable per idempotency key) is the provider id.

Like HTTP, the relay is reached through the outbound guard: ``host`` is resolved once, every
address is checked against the instance's policy (:class:`~dripdrop.errors.OutboundBlocked`
when refused) and the socket connects to the vetted IP. TLS certificates are always verified
(``validate_certs=False`` is refused, as ``verify=False`` is for HTTP; trust a private relay's
CA in the system store instead), and AUTH is never sent over ``security="none"``, not even to
loopback: a relay needing credentials needs ``starttls`` or ``ssl``.
"""

from __future__ import annotations

import ssl
from email.utils import getaddresses, parseaddr
from typing import Any, Literal

import aiosmtplib
from pydantic import Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from dripdrop.channels.base import (
    AdapterInfo,
    DeliveryContext,
    DeliveryResult,
    Fields,
    Message,
    ProviderSpec,
)
from dripdrop.channels.emailfmt import build_mime
from dripdrop.channels.http import Secrets
from dripdrop.channels.providers._email import EmailDefaults
from dripdrop.channels.registry import register
from dripdrop.engine.recipients import single_email_address
from dripdrop.errors import DeliveryError, OutboundBlocked, PermanentError, TransientError
from dripdrop.net import connect_guarded, policy_of, tls_server_name
from dripdrop.net.policy import MAX_TIMEOUT_MS

_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class SmtpCredentials(Fields):
    """AUTH credentials; both empty means no AUTH."""

    username: str | None = None
    password: str | None = None


class SmtpConfig(EmailDefaults):
    """Where and how to connect. ``port`` defaults by ``security`` (587, 465 or 25)."""

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    timeout: float = Field(default=30, gt=0, le=MAX_TIMEOUT_MS / 1000)
    # Kept so stored adapters still validate; only True is accepted (see the module docstring).
    validate_certs: bool = True
    local_hostname: str | None = None

    @field_validator("validate_certs")
    @classmethod
    def _verified(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "TLS certificate verification cannot be turned off; trust the relay's CA instead"
            )
        return value


def adapter_errors(creds: SmtpCredentials, config: SmtpConfig) -> dict[str, list[str]]:
    """Problems only visible with credentials and config together (the field is the key)."""
    if config.security == "none" and (creds.username or creds.password):
        return {
            "config.security": [
                "must be 'starttls' or 'ssl' when credentials are set: "
                "'none' would send the password in clear text"
            ]
        }
    return {}


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


def check_adapter(credentials: dict[str, Any], config: dict[str, Any]) -> dict[str, list[str]]:
    """The registry's create/update check: :func:`adapter_errors` on the validated dicts."""
    return adapter_errors(SmtpCredentials(**credentials), SmtpConfig.model_validate(config))


class SmtpProvider:
    """Sends one email through an SMTP relay per delivery."""

    # Checked when an adapter is created or updated (AUTH needs TLS).
    check_adapter = staticmethod(check_adapter)

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Build the MIME message and hand it to the relay."""
        try:
            config = SmtpConfig.model_validate(adapter.config)
            creds = SmtpCredentials.model_validate(adapter.credentials)
        except PydanticValidationError as exc:  # stored before these rules, or built by hand
            # Locations and messages only: the input may be a password.
            text = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise PermanentError(f"smtp adapter is invalid: {text}") from None
        secrets = Secrets.of(adapter)
        if creds.username and creds.password:
            # AUTH PLAIN sends base64("\0user\0password"); AUTH LOGIN base64 of the password.
            secrets.add(f"\0{creds.username}\0{creds.password}")
        problems = adapter_errors(creds, config)
        if problems:
            field, [text] = next(iter(problems.items()))
            raise PermanentError(f"smtp adapter {field} {text}")
        fields = message.fields
        # The To address is checked before anything is built: one address, no smuggled list.
        to = single_email_address(message.recipient or fields.get("to"), "to")
        mime = build_mime(message, adapter)
        sender = parseaddr(str(mime["From"]))[1]
        recipients = [to, *_addresses(mime["Cc"], fields.get("bcc"))]
        if not sender:
            raise PermanentError("no valid sender address")
        try:
            # Resolved and vetted once; aiosmtplib gets the socket, never the name to look up.
            sock = await connect_guarded(
                config.host,
                config.port or _DEFAULT_PORTS[config.security],
                policy_of(ctx.http),
                timeout=config.timeout,
            )
        except OutboundBlocked:
            raise
        except Exception as exc:
            raise _classify(exc) from exc
        try:
            client = aiosmtplib.SMTP(
                hostname=tls_server_name(config.host),  # SNI and certificate name only
                sock=sock,
                username=creds.username or None,
                password=creds.password if creds.username else None,
                local_hostname=config.local_hostname,
                timeout=config.timeout,
                use_tls=config.security == "ssl",
                start_tls=config.security == "starttls",
                validate_certs=True,
            )
            async with client:
                refused, reply = await client.send_message(
                    mime, sender=sender, recipients=recipients
                )
        except Exception as exc:
            # No chaining: the relay's reply may echo the AUTH exchange.
            raise secrets.scrub_error(_classify(exc)) from None
        finally:
            sock.close()  # a no-op once the transport closed it; frees it if connect failed
        # aiosmtplib only returns after a 250 to DATA; recipients refused among several are listed.
        response: dict[str, Any] = _reply(250, reply)
        if refused:
            response["refused"] = {k: _reply(v.code, v.message) for k, v in refused.items()}
        return DeliveryResult(
            provider_message_id=str(mime["Message-ID"]),
            status="sent",
            response=secrets.scrub(response),
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
