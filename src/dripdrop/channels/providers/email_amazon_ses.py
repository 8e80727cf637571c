"""Email through Amazon SES (``amazon_ses``): the SES v2 SendEmail API with raw MIME content.

Raw content keeps our own headers (Message-ID, List-Unsubscribe, Reply-To) exactly as built by
:func:`~dripdrop.channels.emailfmt.build_mime`. Requests are SigV4-signed for service ``ses``.
"""

from __future__ import annotations

import base64
import json
from email.utils import getaddresses
from typing import Any

from pydantic import Field

from dripdrop.channels.aws import REGION, AwsCredentials, aws_error, aws_request
from dripdrop.channels.base import (
    AdapterInfo,
    DeliveryContext,
    DeliveryResult,
    Message,
    ProviderSpec,
)
from dripdrop.channels.emailfmt import build_mime
from dripdrop.channels.http import Secrets, load, scrub_response
from dripdrop.channels.providers._email import SoftBounceSettings
from dripdrop.channels.registry import register
from dripdrop.errors import PermanentError
from dripdrop.net import response_summary

TOPIC_ARN = r"^arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w.-]+$"


class SesConfig(SoftBounceSettings):
    """The SES region; ``base_url`` replaces ``https://email.{region}.amazonaws.com``.
    ``sns_topic_arn`` is the SNS topic SES notifies: the only one ``/inbound/amazon_ses/<id>``
    accepts."""

    region: str = Field(pattern=REGION)
    base_url: str | None = None
    configuration_set: str | None = None
    unsubscribe_url: str | None = None
    sns_topic_arn: str | None = Field(default=None, pattern=TOPIC_ARN)


def _addresses(*values: Any) -> list[str]:
    flat: list[str] = []
    for value in values:
        if value:
            flat.extend([value] if isinstance(value, str) else [str(v) for v in value])
    return [addr for _, addr in getaddresses(flat) if addr]


class AmazonSesProvider:
    """Sends one email per call with SES v2 ``SendEmail``."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Build the MIME message, send it raw, and return SES's MessageId."""
        config = load(SesConfig, adapter.config, "config")
        creds = load(AwsCredentials, adapter.credentials, "credentials").model_dump()
        secrets = Secrets.of(adapter)
        mime = build_mime(message, adapter)
        destination = {
            "ToAddresses": _addresses(mime["To"]),
            "CcAddresses": _addresses(mime["Cc"]),
            "BccAddresses": _addresses(message.fields.get("bcc")),
        }
        payload: dict[str, Any] = {
            "FromEmailAddress": str(mime["From"]),
            "Destination": {k: v for k, v in destination.items() if v},
            "Content": {"Raw": {"Data": base64.b64encode(mime.as_bytes()).decode("ascii")}},
        }
        if reply_to := _addresses(mime["Reply-To"]):
            payload["ReplyToAddresses"] = reply_to
        if config.configuration_set:
            payload["ConfigurationSetName"] = config.configuration_set
        base = (config.base_url or f"https://email.{config.region}.amazonaws.com").rstrip("/")
        response = await aws_request(
            ctx,
            "POST",
            f"{base}/v2/email/outbound-emails",
            service="ses",
            region=config.region,
            credentials=creds,
            body=json.dumps(payload).encode(),
            content_type="application/json",
        )
        response = scrub_response(response, secrets)  # AWS errors may quote the session token
        if not response.is_success:
            raise aws_error(response, "SES")
        try:
            answer = response.json()
            message_id = answer["MessageId"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(
                "SES answered without a MessageId",
                response=response_summary(response),
                status=response.status_code,
            ) from exc
        # SES replaces the Message-ID header with its own; keep ours for threading lookups.
        return DeliveryResult(
            provider_message_id=str(message_id),
            status="sent",
            response={**answer, "message_id_header": str(mime["Message-ID"])},
        )


register(
    ProviderSpec(
        "email",
        "amazon_ses",
        AwsCredentials,
        SesConfig,
        AmazonSesProvider,
        "Amazon SES (v2 SendEmail, raw MIME, SigV4)",
        secret_fields=("secret_access_key", "session_token"),
        extra="aws",
    )
)
