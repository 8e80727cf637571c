"""A careless provider echoes the credentials it was sent — in its answers and in its errors, in
any encoding. None of them may reach step_executions (response, error_message), the worker's
log or an execution's repr; and a stored answer is capped (items 1 and 2 of the issue)."""

from __future__ import annotations

import base64
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from pytest_httpserver import HTTPServer
from secrets_support import execution_rows, leaks, one_step, worker
from werkzeug import Request, Response

from dripdrop.worker.storable import MAX_JSON

# Tokens with characters that percent-encoding and JSON change, so each form differs from raw.
TOKEN = "tok/en+SECRET=42&more$"
# A successful answer every provider below accepts as "sent".
SENT = {
    "ok": True,
    "id": "m1",
    "sid": "SM1",
    "ts": "1.2",
    "result": {"message_id": 7},
    "messages": [{"status": "0", "message-id": "m1"}],
}


@dataclass
class Setup:
    """One provider: its adapter, the step it sends, and the Basic user when it uses Basic."""

    channel: str
    provider: str
    credentials: dict[str, Any]
    config: dict[str, Any]
    step: dict[str, Any]
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def setups(base: str) -> dict[str, Setup]:
    return {
        "mailgun": Setup(
            "email",
            "mailgun",
            {"api_key": TOKEN},
            {"domain": "mg.example.com", "base_url": base, "from": "a@mg.example.com"},
            {"subject": "Hi", "body": "Hello"},
            user="api",
        ),
        "twilio": Setup(
            "sms",
            "twilio",
            {"account_sid": "AC0123456789abcdef", "auth_token": TOKEN},
            {"from": "+15005550006", "base_url": base},
            {"body": "code 1234"},
            user="AC0123456789abcdef",
        ),
        "vonage": Setup(
            "sms",
            "vonage",
            {"api_key": "abcd1234", "api_secret": TOKEN},
            {"from": "DripDrop", "base_url": base},
            {"body": "code 1234"},
        ),
        "webhook": Setup(
            "webhook",
            "http",
            {"headers": {"Authorization": f"Bearer {TOKEN}"}},
            {},
            {"url": f"{base}/hook", "body": {"event": "x"}},
        ),
        "telegram": Setup(
            "telegram",
            "bot_api",
            {"bot_token": "123456:" + TOKEN},
            {"base_url": base},
            {"text": "hi", "chat_id": "42"},
        ),
    }


def careless(status: int, pad: int = 0):
    """A handler that quotes back everything it got: headers, URL, the body as sent, and the
    Authorization header's token and decoded Basic pair (as a debugging API might)."""

    def handle(request: Request) -> Response:
        auth = request.headers.get("Authorization", "")
        token = auth.split(" ", 1)[-1]
        echo = {
            "headers": dict(request.headers),
            "url": request.url,
            "body": request.get_data(as_text=True),
            "token": token,
            "pad": "x" * pad,
        }
        if status < 300:
            return Response(json.dumps({**SENT, "echo": echo}), status, mimetype="application/json")
        return Response(f"rejected {json.dumps(echo)}", status, mimetype="text/plain")

    return handle


def _adapter(dd: Any, s: Setup) -> Any:
    return dd.create_channel_adapter(
        name="a",
        channel=s.channel,
        provider=s.provider,
        credentials=s.credentials,
        config=s.config,
        is_default=True,
    )


def _everything_shown(dd: Any, caplog: pytest.LogCaptureFixture) -> str:
    """Stored rows, the executions' reprs and DripDrop's log, as one text to search."""
    rows = execution_rows(dd)
    shown = [f"{r.response_text} {r.error_message}" for r in rows]
    enrollment = dd.get_enrollment("s", "User", "1")
    shown += [repr(x) for x in dd.list_executions(enrollment.id)]
    # DripDrop's own records only: the fake server logs the request line it received.
    shown += [r.getMessage() for r in caplog.records if r.name.startswith("dripdrop")]
    return "\n".join(shown)


@pytest.mark.parametrize("name", ["mailgun", "twilio", "vonage", "webhook", "telegram"])
@pytest.mark.parametrize("status", [200, 400, 503])
def test_an_echoed_credential_is_stored_and_logged_in_no_form(
    dd: Any, httpserver: HTTPServer, caplog: pytest.LogCaptureFixture, name: str, status: int
) -> None:
    """Sent, failed or retried by the worker, the raw key, its percent-encoding, the base64 of
    the Basic pair and a bearer token without its scheme word are all masked."""
    caplog.set_level(logging.INFO, logger="dripdrop")
    httpserver.expect_request(re.compile(".*"), method="POST").respond_with_handler(
        careless(status)
    )
    s = setups(httpserver.url_for("/").rstrip("/"))[name]
    one_step(dd, s.channel, s.step, _adapter(dd, s).id)
    expected = "sent" if status == 200 else "failed"
    with worker(dd) as wait_for:
        wait_for(lambda: [r.state for r in execution_rows(dd)] == [expected])
    assert len(httpserver.log) == 1
    shown = _everything_shown(dd, caplog)
    assert "***" in shown  # the echo was stored, masked
    assert leaks(shown, TOKEN, s.user) == []


def test_a_large_answer_is_stored_capped_and_scrubbed(dd: Any, httpserver: HTTPServer) -> None:
    """A 100 KB answer that echoes the bearer token keeps at most MAX_JSON of JSON, no token."""
    httpserver.expect_request("/hook").respond_with_handler(careless(200, pad=100_000))
    s = setups(httpserver.url_for("/").rstrip("/"))["webhook"]
    one_step(dd, s.channel, s.step, _adapter(dd, s).id)
    assert dd.run_due().sent == 1
    [row] = execution_rows(dd)
    assert len(row.response_text.encode()) <= MAX_JSON
    assert row.response["truncated"] is True and row.response["bytes"] > MAX_JSON
    assert leaks(row.response_text, TOKEN) == []


def test_an_answer_under_the_cap_is_kept_whole_but_scrubbed(
    dd: Any, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_handler(careless(200, pad=1000))
    s = setups(httpserver.url_for("/").rstrip("/"))["webhook"]
    one_step(dd, s.channel, s.step, _adapter(dd, s).id)
    assert dd.run_due().sent == 1
    [row] = execution_rows(dd)
    body = row.response["body"]
    assert body["echo"]["token"] == "***" and body["echo"]["pad"] == "x" * 1000
    assert body["echo"]["headers"]["Authorization"] == "***"
    assert leaks(row.response_text, TOKEN) == []


@pytest.mark.parametrize("offset", [3, 10, len(TOKEN) - 2])
def test_a_token_cut_by_the_error_excerpt_leaves_no_half(
    dd: Any, httpserver: HTTPServer, offset: int
) -> None:
    """The error text keeps a 500-character excerpt of the answer: a token straddling that
    boundary is masked before the cut, so neither half survives."""
    prefix = "e" * (500 - offset)
    httpserver.expect_request("/hook").respond_with_data(
        prefix + TOKEN + " tail", status=400, content_type="text/plain"
    )
    s = setups(httpserver.url_for("/").rstrip("/"))["webhook"]
    one_step(dd, s.channel, s.step, _adapter(dd, s).id)
    assert dd.run_due().failed == 1
    [row] = execution_rows(dd)
    shown = f"{row.error_message} {row.response_text}"
    assert leaks(shown, TOKEN) == []
    assert TOKEN[:offset] not in row.error_message.split(prefix, 1)[-1]


def test_a_percent_encoded_token_in_a_webhook_answer_is_masked(
    dd: Any, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_data(
        f"redirect_to=/login?token={quote(TOKEN, safe='')}", status=401
    )
    s = setups(httpserver.url_for("/").rstrip("/"))["webhook"]
    one_step(dd, s.channel, s.step, _adapter(dd, s).id)
    assert dd.run_due().failed == 1
    [row] = execution_rows(dd)
    assert "token=***" in row.error_message
    assert leaks(f"{row.error_message} {row.response_text}", TOKEN) == []


@pytest.mark.parametrize("auth", ["bearer", "basic"])
def test_an_http_hook_error_quoting_its_auth_keeps_no_part_of_it(
    dd: Any, httpserver: HTTPServer, auth: str
) -> None:
    """The same for HTTP hooks: the echoed token, cut by the excerpt, leaves nothing behind."""
    config = {"token": TOKEN} if auth == "bearer" else {"username": "u", "password": TOKEN}
    sent = TOKEN if auth == "bearer" else base64.b64encode(f"u:{TOKEN}".encode()).decode()
    prefix = "e" * 495  # the 500-character excerpt ends 5 characters into the secret
    httpserver.expect_request("/score").respond_with_data(
        f"{prefix}{sent} rejected", status=400, content_type="text/plain"
    )
    seq = dd.create_sequence(name="S", key="s")
    hook = dd.create_http_hook(
        seq.id,
        name="Score",
        key="score",
        url=httpserver.url_for("/score"),
        auth_type=auth,
        auth_config=config,
        retry_count=0,
    )
    result = dd.test_http_hook(hook.id, {})
    assert not result.ok and "***" in result.error
    assert leaks(result.error, TOKEN, "u") == []
    assert sent[:5] not in result.error.split(prefix, 1)[-1]
