"""The unsubscribe link and RFC 8058 headers on the wire, from a real run of the worker: SMTP
(a real aiosmtpd server) and every HTTP email API (a local server answering as the API does),
each in the shape its API takes custom headers. The link then unsubscribes through the web app."""

from __future__ import annotations

import base64
import email
import json
import re
import socket
import sys
from email import policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from deliverability_support import PUBLIC_URL, email_sequence, subscriber
from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from dripdrop.engine.unsubscribe import signer
from dripdrop.testing import TestEnv
from dripdrop.web import create_app

sys.path.insert(0, str(Path(__file__).parent.parent / "providers"))
from cases import CASE_BY_ID

ONE_CLICK = "List-Unsubscribe=One-Click"


def _mailgun(r: dict[str, Any]) -> dict[str, str]:
    form = r["form"]
    return {k[2:]: v[0] for k, v in form.items() if k.startswith("h:")}


def _sendgrid(r: dict[str, Any]) -> dict[str, str]:
    return r["json"]["headers"]


def _postmark(r: dict[str, Any]) -> dict[str, str]:
    return {h["Name"]: h["Value"] for h in r["json"]["Headers"]}


def _resend(r: dict[str, Any]) -> dict[str, str]:
    return r["json"]["headers"]


def _ses(r: dict[str, Any]) -> dict[str, str]:
    raw = base64.b64decode(r["json"]["Content"]["Raw"]["Data"])
    mime = email.message_from_bytes(raw, policy=policy.default)
    return {k: str(v) for k, v in mime.items()}


HTTP_PROVIDERS = {
    "mailgun": _mailgun,
    "sendgrid": _sendgrid,
    "postmark": _postmark,
    "resend": _resend,
    "amazon_ses": _ses,
}


@pytest.fixture
def env(database_url, clock):
    e = TestEnv(database_url, clock=clock, public_url=PUBLIC_URL, allow_private_network=True)
    try:
        yield e
    finally:
        e.close()


def _adapter(provider: str, base: str) -> dict[str, Any]:
    if provider == "amazon_ses":
        return dict(
            credentials={"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI"},
            config={"region": "us-east-1", "base_url": base},
        )
    case = CASE_BY_ID[provider]
    config = {k: (base if v == "{base}" else v) for k, v in case.config.items()}
    return dict(credentials=case.credentials, config={**config, "from": "hello@example.com"})


def _answer(provider: str) -> Response:
    if provider == "amazon_ses":
        return Response(json.dumps({"MessageId": "ses-1"}), 200, mimetype="application/json")
    return CASE_BY_ID[provider].success.response()


def _unsubscribe_through_the_app(env: TestEnv, url: str) -> None:
    assert url.startswith(PUBLIC_URL + "/u/")
    claim = signer(env.dd.runtime).verify(url.rsplit("/", 1)[1], env.clock())
    assert (claim.recipient, claim.category) == ("ada@example.com", "marketing")
    with TestClient(create_app(env.dd)) as client:
        answer = client.post(url.removeprefix(PUBLIC_URL), content=ONE_CLICK)
    assert answer.status_code == 200
    assert env.dd.is_suppressed("email", "ada@example.com", category="marketing")


@pytest.mark.parametrize("provider", sorted(HTTP_PROVIDERS))
def test_http_email_apis_receive_the_headers(env, httpserver: HTTPServer, provider):
    seen: list[dict[str, Any]] = []

    def handle(request: Request) -> Response:
        body = request.get_data(as_text=True)
        seen.append(
            {
                "json": json.loads(body) if request.mimetype == "application/json" else None,
                "form": request.form.to_dict(flat=False),
            }
        )
        return _answer(provider)

    httpserver.expect_request(re.compile(".*"), method="POST").respond_with_handler(handle)
    dd = env.dd
    dd.create_channel_adapter(
        name=provider,
        channel="email",
        provider=provider,
        is_default=True,
        **_adapter(provider, httpserver.url_for("").rstrip("/")),
    )
    email_sequence(dd, "promo", steps=1, category="marketing")
    dd.enroll("promo", subscriber(1), data={"name": "Ada", "email": "ada@example.com"})
    summary = dd.run_due()
    assert summary.sent == 1, summary
    [request] = seen
    headers = HTTP_PROVIDERS[provider](request)
    url = headers["List-Unsubscribe"].strip("<>")
    assert headers["List-Unsubscribe-Post"] == ONE_CLICK
    _unsubscribe_through_the_app(env, url)


class _Recorder:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            email.message_from_bytes(envelope.original_content, policy=policy.default)
        )
        return "250 2.0.0 queued"


def test_smtp_carries_the_headers_and_the_link(env):
    recorder = _Recorder()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        dd = env.dd
        dd.create_channel_adapter(
            name="relay",
            channel="email",
            provider="smtp",
            is_default=True,
            config={
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "from": "hello@example.com",
            },
        )
        email_sequence(dd, "promo", steps=1, category="marketing")
        dd.enroll("promo", subscriber(1), data={"name": "Ada", "email": "ada@example.com"})
        assert dd.run_due().sent == 1
    finally:
        controller.stop()
    [message] = recorder.messages
    url = message["List-Unsubscribe"].strip("<>")
    assert message["List-Unsubscribe-Post"] == ONE_CLICK
    html = message.get_body(("html",)).get_content()
    assert f"href='{url}'" in html  # the same link in the body
    _unsubscribe_through_the_app(env, url)
