"""Any service Apprise supports, from an Apprise URL (``pip install dripdrop-engine[apprise]``).

Apprise makes its own HTTP calls, so these deliveries do not pass through DripDrop's guarded
client. It reports only success or failure, not why: a failure is treated as transient (bounded
by the step's ``max_retries``), a partial success of several URLs as permanent, because a retry
would notify again the services that already got the message.
"""

from __future__ import annotations

from typing import Any, Literal

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


class AppriseCredentials(Fields):
    # One URL, or several separated by spaces or commas (Apprise's own convention).
    url: str


class AppriseConfig(Fields):
    body_format: Literal["text", "markdown", "html"] | None = None


def _urls(value: str) -> list[str]:
    return [u for u in value.replace(",", " ").split() if u]


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
