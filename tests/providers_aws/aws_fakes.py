"""Helpers for the local AWS endpoints: a SigV4 verifier that checks requests as AWS does."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug import Request

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "eu-west-1"

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<sig>[0-9a-f]{64})$"
)


@dataclass
class SigV4Verifier:
    """Recomputes a request's SigV4 signature from what arrived, as the AWS front end does."""

    service: str
    secrets: dict[str, str] = field(default_factory=lambda: {ACCESS_KEY: SECRET_KEY})
    region: str = REGION

    def problem(self, request: Request) -> str | None:
        """None when the signature is valid, else the reason AWS would give."""
        match = _AUTH.match(request.headers.get("Authorization", ""))
        if not match:
            return "Authorization header missing or malformed"
        amz_date = request.headers.get("X-Amz-Date", "")
        if not re.fullmatch(r"\d{8}T\d{6}Z", amz_date):
            return "X-Amz-Date missing or malformed"
        if match["key"] not in self.secrets:
            return "The security token included in the request is invalid."
        if (match["region"], match["service"]) != (self.region, self.service):
            return f"Credential should be scoped to {self.region}/{self.service}"
        if match["date"] != amz_date[:8]:
            return "Credential date does not match X-Amz-Date"
        sent = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if abs((datetime.now(UTC) - sent).total_seconds()) > 300:
            return "Signature expired"
        signed = match["signed"].split(";")
        if "host" not in signed:
            return "'Host' must be a signed header"
        headers = {name: request.headers.get(name, "") for name in signed}
        url = f"http://{request.headers['Host']}{request.path}"
        if request.query_string:
            url += "?" + request.query_string.decode()
        aws = AWSRequest(method=request.method, url=url, data=request.get_data(), headers=headers)
        aws.context["timestamp"] = amz_date
        token = request.headers.get("X-Amz-Security-Token")
        auth = SigV4Auth(
            Credentials(match["key"], self.secrets[match["key"]], token), self.service, self.region
        )
        expected = auth.signature(auth.string_to_sign(aws, auth.canonical_request(aws)), aws)
        if expected != match["sig"]:
            return (
                "The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method."
            )
        return None
