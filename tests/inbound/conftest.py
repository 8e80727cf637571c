"""Fixtures for the provider-event tests: a fake send API per provider (so executions get their
message ids from a real send), the web app, and the SNS certificate server.

This folder is put on ``sys.path`` so the tests import ``inbound_support`` by name.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from inbound_support import PROVIDERS, Keys  # noqa: E402

from dripdrop.inbound.context import InboundContext  # noqa: E402
from dripdrop.web import create_app  # noqa: E402


@pytest.fixture
def keys() -> Keys:
    return Keys.generate()


@pytest.fixture
def app(dd: Any) -> Any:
    return create_app(dd)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def _answer(provider: str, n: int) -> Response:
    """What each provider's send API answers (its documented success shape), with a fresh id."""
    body: Any
    headers: dict[str, str] = {}
    if provider == "mailgun":
        body = {"id": f"<20261130.{n}@mg.example.com>", "message": "Queued. Thank you."}
    elif provider == "sendgrid":
        return Response("", status=202, headers={"X-Message-Id": f"W86EgYT6SQKk0lRflfLRs{n}"})
    elif provider == "postmark":
        body = {
            "To": "receiver@example.com",
            "SubmittedAt": "2026-11-30T08:00:00.0000000Z",
            "MessageID": f"b7bc2f4a-e38e-4336-af7d-e6c392c2f{n:03d}",
            "ErrorCode": 0,
            "Message": "OK",
        }
    elif provider == "resend":
        body = {"id": f"49a3999c-0ce1-4ea6-ab68-afcd6dc2e{n:03d}"}
    elif provider == "amazon_ses":
        body = {"MessageId": f"0100018b2f3c4d5e-{n:08d}-000000"}
    elif provider == "twilio":
        body = {"sid": f"SM{n:032d}", "status": "queued", "to": "+14155550100"}
    else:  # pragma: no cover - the table names every provider
        raise AssertionError(provider)
    return Response(json.dumps(body), status=200, headers=headers, mimetype="application/json")


CERT_PATH = "/SimpleNotificationService-0123456789abcdef.pem"


@pytest.fixture
def send_api(httpserver: HTTPServer, keys: Keys) -> HTTPServer:
    """One local server answering every provider's send path, and playing SNS: the signing
    certificate at CERT_PATH and subscription confirmations at ``/?Action=ConfirmSubscription``."""
    counter = itertools.count(1)

    def handler(request: Request) -> Response:
        for provider, spec in PROVIDERS.items():
            if request.path == spec.send_path:
                return _answer(provider, next(counter))
        if request.path == CERT_PATH:
            return Response(keys.sns_cert_pem, status=200, mimetype="application/x-pem-file")
        if request.path == "/" and request.args.get("Action") == "ConfirmSubscription":
            return Response("<ConfirmSubscriptionResponse/>", status=200, mimetype="text/xml")
        return Response("not found", status=404)

    httpserver.expect_request(re.compile(".*")).respond_with_handler(handler)
    return httpserver


@pytest.fixture
def local_sns(app: Any, dd: Any, send_api: HTTPServer) -> str:
    """Trust the local server as if it were SNS (the production context trusts only
    sns.<region>.amazonaws.com over HTTPS); the certificate URL to sign with."""
    app.state.inbound = InboundContext(
        dd.runtime.policy,
        sns_hosts=re.compile(r"^(localhost|127\.0\.0\.1)$"),
        sns_schemes=("http",),
    )
    return send_api.url_for(CERT_PATH)


@pytest.fixture
def send(dd: Any, send_api: HTTPServer, keys: Keys) -> Callable[..., Any]:
    """``send(provider, recipient=None, config=None)``: a message really sent through the
    provider's adapter (made once per provider) to its fake API; returns the execution."""
    adapters: dict[str, Any] = {}
    subscribers = itertools.count(1)

    def do(provider: str, recipient: str | None = None, config: dict | None = None) -> Any:
        spec = PROVIDERS[provider]
        if provider not in adapters:
            adapters[provider] = dd.create_channel_adapter(
                name=provider,
                channel=spec.channel,
                provider=provider,
                credentials=spec.credentials(keys),
                config={
                    **spec.config,
                    "base_url": send_api.url_for("").rstrip("/"),
                    **(config or {}),
                },
            )
            seq = dd.create_sequence(name=provider, key=f"s_{provider}")
            version = dd.create_sequence_version(seq.id, active=True)
            step_config = (
                {"subject": "Hello", "body": "<p>Hello</p>", "from": "News <news@example.com>"}
                if spec.channel == "email"
                else {"body": "Hello"}
            )
            dd.create_step(
                version.id,
                name="hello",
                channel=spec.channel,
                config={**step_config, "channel_adapter_rotation": [str(adapters[provider].id)]},
            )
        field = "email" if spec.channel == "email" else "phone"
        enrollment = dd.enroll(
            f"s_{provider}",
            {"type": "User", "id": next(subscribers)},
            data={field: recipient or spec.recipient},
        )
        dd.run_due()
        (execution,) = dd.list_executions(enrollment.id)
        assert execution.state == "sent", execution.error_message
        return execution

    do.adapters = adapters  # type: ignore[attr-defined]
    return do
