"""What an HTTP hook sends: auth headers, rendered URL, headers and body; the guard's refusal."""

from __future__ import annotations

import base64
import json

import pytest
from pytest_httpserver import HTTPServer

from dripdrop.errors import PermanentError
from dripdrop.hooks.http import call_http_hook
from dripdrop.net import OutboundPolicy, create_http_client

AUTH_CASES = [
    (
        "bearer",
        {"token": "tok-s3cret-123"},
        "Authorization",
        "Bearer tok-s3cret-123",
        ["tok-s3cret-123"],
    ),
    (
        "basic",
        {"username": "ann", "password": "pw-s3cret-456"},
        "Authorization",
        "Basic " + base64.b64encode(b"ann:pw-s3cret-456").decode(),
        ["pw-s3cret-456", base64.b64encode(b"ann:pw-s3cret-456").decode()],
    ),
    (
        "header",
        {"name": "X-Api-Key", "value": "key-s3cret-789"},
        "X-Api-Key",
        "key-s3cret-789",
        ["key-s3cret-789"],
    ),
]


@pytest.mark.parametrize(("auth_type", "auth", "header", "expected", "secrets"), AUTH_CASES)
async def test_auth_header_reaches_server(
    server: HTTPServer, client, make_hook, auth_type, auth, header, expected, secrets
) -> None:
    server.expect_request("/hook", method="POST", headers={header: expected}).respond_with_json(
        {"score": 7}
    )
    hook = make_hook(
        auth_type=auth_type, auth_config=auth, response_path="score", response_type="number"
    )
    result = await call_http_hook(None, hook, {}, client)
    assert result.value == 7
    assert result.status == 200
    assert server.log[0][0].headers[header] == expected


@pytest.mark.parametrize(("auth_type", "auth", "header", "expected", "secrets"), AUTH_CASES)
async def test_auth_secrets_absent_from_errors(
    server: HTTPServer, client, make_hook, auth_type, auth, header, expected, secrets
) -> None:
    # A hostile or careless server echoes the credential back in its error body.
    def echo(request):
        from werkzeug import Response

        body = json.dumps({"error": "denied", "you_sent": request.headers.get(header)})
        return Response(body, status=401, content_type="application/json")

    server.expect_request("/hook").respond_with_handler(echo)
    hook = make_hook(auth_type=auth_type, auth_config=auth, retry_count=2)
    with pytest.raises(PermanentError) as info:
        await call_http_hook(None, hook, {}, client)
    message = str(info.value)
    assert "lead_score" in message and "401" in message
    assert info.value.status == 401
    for secret in secrets:
        assert secret not in message
        assert secret not in json.dumps(info.value.response)
    assert len(server.log) == 1  # a 401 is not retried


async def test_body_template_rendered_and_sent_as_json(
    server: HTTPServer, client, make_hook
) -> None:
    server.expect_request("/hook", method="POST").respond_with_json({"ok": True})
    hook = make_hook(
        body_template='{"email": "{{ email }}", "plan": "{{ data.plan }}", "n": {{ n }}}',
        response_path="ok",
        response_type="boolean",
    )
    context = {"email": "ann@example.com", "n": 3, "data": {"plan": "pro"}}
    result = await call_http_hook(None, hook, context, client)
    assert result.value is True
    request = server.log[0][0]
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.get_data()) == {"email": "ann@example.com", "plan": "pro", "n": 3}


async def test_non_json_body_sent_as_text(server: HTTPServer, client, make_hook) -> None:
    server.expect_request("/hook").respond_with_data("fine", content_type="text/plain")
    hook = make_hook(body_template="hello {{ name }}", response_type="text")
    result = await call_http_hook(None, hook, {"name": "Ann"}, client)
    assert result.value == "fine"
    request = server.log[0][0]
    assert request.get_data() == b"hello Ann"
    assert request.headers["Content-Type"].startswith("text/plain")


async def test_url_template_and_header_values_rendered(
    server: HTTPServer, client, make_hook
) -> None:
    server.expect_request("/users/u-42/score", method="GET").respond_with_json({"score": 72.5})
    hook = make_hook(
        url=server.url_for("/") + "users/{{subscriber_id}}/score",
        method="get",
        headers={"X-Tenant": "{{ tenant }}"},
        response_path="score",
        response_type="number",
    )
    result = await call_http_hook(None, hook, {"subscriber_id": "u-42", "tenant": "acme"}, client)
    assert result.value == 72.5
    assert server.log[0][0].headers["X-Tenant"] == "acme"
    assert server.log[0][0].method == "GET"


async def test_default_policy_refuses_loopback_before_connecting(
    server: HTTPServer, make_hook
) -> None:
    server.expect_request("/hook").respond_with_json({"score": 1})
    hook = make_hook(retry_count=3)
    strict = create_http_client(OutboundPolicy())
    try:
        with pytest.raises(PermanentError, match=r"hook 'lead_score' failed after 1 attempt:"):
            await call_http_hook(None, hook, {}, strict)
    finally:
        await strict.aclose()
    assert server.log == []  # nothing reached the server


async def test_bad_template_is_permanent(client, make_hook) -> None:
    hook = make_hook(body_template="{% if %}")
    with pytest.raises(PermanentError, match=r"lead_score.*body_template"):
        await call_http_hook(None, hook, {}, client)
