"""Calling AWS APIs without boto3: SigV4 signing with botocore and AWS error classification.

botocore (the ``aws`` extra) signs the request; the request itself goes through the delivery
context's HTTP client, so the outbound guard applies. Only the headers we set (plus ``host``)
are signed, so whatever the HTTP client adds later cannot break the signature.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import httpx2
from pydantic import Field

from dripdrop.channels.base import DeliveryContext, Fields
from dripdrop.errors import (
    ConfigurationError,
    DeliveryError,
    PermanentError,
    TransientError,
    require_extra,
)
from dripdrop.net import (
    GuardedClient,
    classify_http_error,
    guarded_request,
    response_summary,
)

__all__ = [
    "THROTTLING_CODES",
    "AwsCredentials",
    "aws_error",
    "aws_request",
    "error_details",
    "sign",
]

#: AWS error codes that mean "slow down / try again", whatever the HTTP status says.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalErrorException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ProvisionedThroughputExceededException",
        "KMSThrottlingException",
    }
)
REGION = r"^[a-z]{2}(-[a-z]+)+-\d+$"


class AwsCredentials(Fields):
    """An IAM access key; ``session_token`` for temporary (STS) credentials."""

    access_key_id: str = Field(min_length=1)
    secret_access_key: str = Field(min_length=1)
    session_token: str | None = None


def sign(
    method: str,
    url: str,
    *,
    service: str,
    region: str,
    credentials: dict[str, Any],
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """The headers of a SigV4-signed request: ours plus Authorization and X-Amz-Date.

    ``credentials`` holds ``access_key_id``, ``secret_access_key`` and maybe ``session_token``.
    """
    require_extra("botocore", "aws")
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = Credentials(
        credentials["access_key_id"],
        credentials["secret_access_key"],
        credentials.get("session_token") or None,
    )
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(creds, service, region).add_auth(request)
    return {k: str(v) for k, v in request.headers.items()}


async def aws_request(
    ctx: DeliveryContext,
    method: str,
    url: str,
    *,
    service: str,
    region: str,
    credentials: dict[str, Any],
    body: bytes,
    content_type: str,
) -> httpx2.Response:
    """Sign and send one request; network failures become TransientError/PermanentError."""
    if ctx.http is None:
        raise ConfigurationError("the delivery context has no HTTP client")
    headers = sign(
        method,
        url,
        service=service,
        region=region,
        credentials=credentials,
        body=body,
        headers={"Content-Type": content_type},
    )
    try:
        if isinstance(ctx.http, GuardedClient):
            # A signed request is only valid for its own URL: never follow redirects.
            return await guarded_request(
                ctx.http, method, url, content=body, headers=headers, follow_redirects=False
            )
        return await ctx.http.request(method, url, content=body, headers=headers)
    except Exception as exc:
        raise classify_http_error(exc) from exc


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def error_details(response: httpx2.Response) -> tuple[str | None, str | None]:
    """The AWS error code and message from a JSON (REST) or XML (query) error answer."""
    code = response.headers.get("x-amzn-errortype")
    code = code.split(":", 1)[0] if code else None
    message: str | None = None
    text = response.text
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = {}
        if isinstance(data, dict):
            raw = data.get("__type") or data.get("code") or data.get("Code")
            code = code or (str(raw).rpartition("#")[2] if raw else None)
            message = data.get("message") or data.get("Message")
    elif text.lstrip().startswith("<"):
        try:
            root = ET.fromstring(text)
        except ET.ParseError:
            root = None
        for el in root.iter() if root is not None else ():
            if _local(el.tag) == "Code" and not code:
                code = (el.text or "").strip() or None
            elif _local(el.tag) == "Message" and not message:
                message = (el.text or "").strip() or None
    return code, message


def aws_error(response: httpx2.Response, service: str) -> DeliveryError:
    """Classify an AWS error answer: throttling codes, 429 and 5xx are transient, others not."""
    code, detail = error_details(response)
    base = classify_http_error(response)
    summary = response_summary(response) | {"code": code, "message": detail}
    text = f"AWS {service} HTTP {response.status_code} {code or ''}".rstrip()
    if detail:
        text += ": " + re.sub(r"\s+", " ", detail)[:300]
    retry_after = base.retry_after if isinstance(base, TransientError) else None
    if isinstance(base, TransientError) or code in THROTTLING_CODES:
        return TransientError(
            text, retry_after=retry_after, response=summary, status=response.status_code
        )
    return PermanentError(text, response=summary, status=response.status_code)
