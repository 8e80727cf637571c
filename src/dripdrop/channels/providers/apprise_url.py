"""Any service Apprise supports, from an Apprise URL (``pip install dripdrop-engine[apprise]``).

Apprise makes its own network calls, so before it is called every destination it was given is
vetted with the instance's outbound policy (:func:`~dripdrop.net.resolve_and_check`): the URL's
host for every service whose URL names a server (``json://``, ``ntfy://host``, ``mailto://``…),
plus the other server settings Apprise knows (``?smtp=``, ACS endpoints, Nostr relays). A refused
host raises :class:`~dripdrop.errors.OutboundBlocked` and nothing is sent; ``?verify=no`` is
refused like ``verify=False`` for HTTP. Services whose URL host is a token (``tgram://``,
``discord://``…) talk to their fixed public API and the token is not looked up. Apprise then
resolves the name again itself, so unlike HTTP the connection is not pinned to the vetted address.

Apprise reports only success or failure, not why: a failure is treated as transient (bounded
by the step's ``max_retries``), a partial success of several URLs as permanent, because a retry
would notify again the services that already got the message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import urlsplit

from dripdrop.channels.base import (
    AdapterInfo,
    DeliveryContext,
    DeliveryResult,
    Fields,
    Message,
    ProviderSpec,
)
from dripdrop.channels.http import load
from dripdrop.channels.registry import register
from dripdrop.errors import PermanentError, TransientError, require_extra
from dripdrop.net import OutboundPolicy, policy_of, resolve_and_check


class AppriseCredentials(Fields):
    # One URL, or several separated by spaces or commas (Apprise's own convention).
    url: str


class AppriseConfig(Fields):
    body_format: Literal["text", "markdown", "html"] | None = None


def _urls(value: str) -> list[str]:
    return [u for u in value.replace(",", " ").split() if u]


# Plugin attributes holding other servers Apprise connects to (mailto's ?smtp=, ACS, Nostr).
_SERVER_ATTRIBUTES = ("smtp_host", "endpoint", "relays")


def _servers(plugin: Any) -> Iterator[tuple[str, int]]:
    """(host, port) of every server an Apprise plugin instance will connect to, as configured."""
    given = getattr(plugin, "port", None)
    port = given if isinstance(given, int) else 0
    # Only plugins declaring a "host" token use the URL host as a server; for the others
    # (tgram://, discord://…) it is a token, which must not be sent to DNS.
    host = getattr(plugin, "host", None)
    if "host" in getattr(plugin, "template_tokens", {}) and host:
        yield str(host), port
    for name in _SERVER_ATTRIBUTES:
        value = getattr(plugin, name, None)
        for text in [value] if isinstance(value, str) else [str(v) for v in value or ()]:
            server = urlsplit(text).hostname if "://" in text else text
            if server:
                yield server, port


async def _vet(notifier: Any, policy: OutboundPolicy) -> None:
    """Refuse before anything is sent when any destination is outside the policy."""
    for plugin in notifier:
        if getattr(plugin, "verify_certificate", True) is False:
            raise PermanentError(
                "apprise: TLS certificate verification cannot be turned off (verify=no)"
            )
        for host, port in _servers(plugin):
            try:
                await resolve_and_check(host, port, policy)
            except OSError as exc:  # unresolvable now: Apprise could not reach it either
                raise TransientError(f"apprise: cannot resolve {host!r}: {exc}") from None


def _status(result: Any) -> str:
    # Apprise 1.x returns a bool; 2.x an AppriseResult with a status enum.
    status = getattr(result, "status", None)
    if status is not None:
        return str(getattr(status, "name", status)).lower()
    return "success" if result else "failure"


class AppriseProvider:
    """Notifies the adapter's Apprise URL(s) once per delivery."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Notify through Apprise; raise Transient/PermanentError (URLs never shown)."""
        apprise = require_extra("apprise", "apprise")
        creds = load(AppriseCredentials, adapter.credentials, "credentials")
        config = load(AppriseConfig, adapter.config, "config")
        fields = message.fields
        body = str(fields.get("body") or fields.get("text") or "")
        if not body:
            raise PermanentError("apprise: a message needs a body")
        urls = _urls(creds.url)
        if not urls:
            raise PermanentError("apprise: credentials.url is empty")
        notifier = apprise.Apprise()
        for url in urls:
            if not notifier.add(url):
                raise PermanentError("apprise: credentials.url is not a valid Apprise URL")
        await _vet(notifier, policy_of(ctx.http))
        kwargs: dict[str, Any] = {
            "body": body,
            "title": str(fields.get("title") or fields.get("subject") or ""),
        }
        if config.body_format:
            kwargs["body_format"] = config.body_format
        result = await notifier.async_notify(**kwargs)
        status = _status(result)
        if status == "success":
            return DeliveryResult(
                provider_message_id=None,
                status="sent",
                response={"status": status, "services": len(notifier)},
            )
        if status == "partial":
            raise PermanentError("apprise: only some services were notified; not retried")
        raise TransientError(
            f"apprise: notification failed ({status})", response={"status": status}
        )


register(
    ProviderSpec(
        "apprise",
        "apprise",
        AppriseCredentials,
        AppriseConfig,
        AppriseProvider,
        "Any Apprise notification URL",
        secret_fields=("url",),
        extra="apprise",
    )
)
