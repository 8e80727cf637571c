"""SMS through Amazon SNS (``aws_sns``): the ``Publish`` query action to a phone number.

Requests are form-encoded and SigV4-signed for service ``sns``; answers and errors are XML.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Literal
from urllib.parse import urlencode

from pydantic import Field

from dripdrop.channels.aws import REGION, AwsCredentials, aws_error, aws_request
from dripdrop.channels.base import (
    AdapterInfo,
    DeliveryContext,
    DeliveryResult,
    Fields,
    Message,
    ProviderSpec,
)
from dripdrop.channels.http import Secrets, load, scrub_response
from dripdrop.channels.registry import register
from dripdrop.errors import PermanentError
from dripdrop.net import response_summary

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class SnsConfig(Fields):
    """The SNS region and optional SMS attributes (sender id, SMS type, origination number)."""

    region: str = Field(pattern=REGION)
    base_url: str | None = None
    sender_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,11}$")
    sms_type: Literal["Transactional", "Promotional"] | None = None
    origination_number: str | None = None


def _publish_form(phone: str, text: str, config: SnsConfig) -> dict[str, str]:
    form = {"Action": "Publish", "Version": "2010-03-31", "PhoneNumber": phone, "Message": text}
    attributes = {
        "AWS.SNS.SMS.SenderID": config.sender_id,
        "AWS.SNS.SMS.SMSType": config.sms_type,
        "AWS.MM.SMS.OriginationNumber": config.origination_number,
    }
    # The query protocol's map encoding: MessageAttributes.entry.N.{Name,Value.*}.
    entries = [(k, v) for k, v in attributes.items() if v]
    for n, (name, value) in enumerate(entries, start=1):
        prefix = f"MessageAttributes.entry.{n}"
        form[f"{prefix}.Name"] = name
        form[f"{prefix}.Value.DataType"] = "String"
        form[f"{prefix}.Value.StringValue"] = value
    return form


def _message_id(xml_text: str) -> str | None:
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return None
    for el in root.iter():
        if el.tag.rpartition("}")[2] == "MessageId" and el.text:
            return el.text.strip()
    return None


class AwsSnsProvider:
    """Sends one SMS per call with SNS ``Publish``."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Publish the text to the recipient's phone number (E.164)."""
        config = load(SnsConfig, adapter.config, "config")
        creds = load(AwsCredentials, adapter.credentials, "credentials").model_dump()
        secrets = Secrets.of(adapter)
        phone = re.sub(r"[\s().-]", "", str(message.recipient or message.fields.get("to") or ""))
        if not _E164.match(phone):
            raise PermanentError(f"not an E.164 phone number: {phone or '(none)'}")
        text = str(message.fields.get("body") or "")
        if not text.strip():
            raise PermanentError("SMS has no body")
        base = (config.base_url or f"https://sns.{config.region}.amazonaws.com").rstrip("/")
        response = await aws_request(
            ctx,
            "POST",
            f"{base}/",
            service="sns",
            region=config.region,
            credentials=creds,
            body=urlencode(_publish_form(phone, text, config)).encode(),
            content_type="application/x-www-form-urlencoded; charset=utf-8",
        )
        response = scrub_response(response, secrets)  # AWS errors may quote the session token
        if not response.is_success:
            raise aws_error(response, "SNS")
        message_id = _message_id(response.text)
        if not message_id:
            raise PermanentError(
                "SNS answered without a MessageId",
                response=response_summary(response),
                status=response.status_code,
            )
        return DeliveryResult(
            provider_message_id=message_id,
            status="sent",
            response={"MessageId": message_id, "status": response.status_code},
        )


register(
    ProviderSpec(
        "sms",
        "aws_sns",
        AwsCredentials,
        SnsConfig,
        AwsSnsProvider,
        "Amazon SNS SMS (Publish to a phone number, SigV4)",
        secret_fields=("secret_access_key", "session_token"),
        extra="aws",
    )
)
