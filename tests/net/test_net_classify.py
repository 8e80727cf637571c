"""parse_retry_after and classify_http_error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx2
import pytest
from pytest_httpserver import HTTPServer

from dripdrop.errors import OutboundBlocked, PermanentError, TransientError
from dripdrop.net import (
    OutboundPolicy,
    classify_http_error,
    create_http_client,
    guarded_request,
    parse_retry_after,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("99999", 3600.0),
        ("1.5", 1.5),
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
    ],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_http_date() -> None:
    header = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert header.endswith("GMT")
    assert parse_retry_after(header, now=NOW) == 90.0
    assert parse_retry_after("Sun, 01 Mar 2026 12:02:00 GMT", now=NOW) == 120.0
    # Past dates mean "now"; far-future dates are capped at an hour.
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now=NOW) == 0.0
    assert parse_retry_after("Wed, 01 Apr 2026 12:00:00 GMT", now=NOW) == 3600.0


def test_parse_retry_after_date_uses_current_time_by_default() -> None:
    header = format_datetime(datetime.now(UTC) + timedelta(seconds=300), usegmt=True)
    value = parse_retry_after(header)
    assert value is not None and 295 <= value <= 300


def _response(status: int, body: bytes = b"", **headers: str) -> httpx2.Response:
    return httpx2.Response(status, content=body, headers=headers)


def test_503_with_retry_after_is_transient() -> None:
    error = classify_http_error(_response(503, b"busy", **{"Retry-After": "7"}))
    assert isinstance(error, TransientError)
    assert error.retry_after == 7.0 and error.status == 503
    assert "503" in str(error) and "busy" in str(error)
    assert error.response == {"status": 503, "body": "busy", "headers": {"retry-after": "7"}}


def test_429_is_transient_without_retry_after() -> None:
    error = classify_http_error(_response(429))
    assert isinstance(error, TransientError) and error.retry_after is None


def test_400_is_permanent_with_parsed_json_body() -> None:
    body = b'{"error": "invalid recipient"}'
    response = _response(
        400, body, **{"Content-Type": "application/json", "Set-Cookie": "s=1", "X-Request-Id": "r1"}
    )
    error = classify_http_error(response)
    assert isinstance(error, PermanentError) and not isinstance(error, TransientError)
    assert error.status == 400
    assert "400" in str(error) and "invalid recipient" in str(error)
    assert error.response["body"] == {"error": "invalid recipient"}
    # Only harmless headers are kept; cookies never reach the delivery log.
    assert error.response["headers"] == {"content-type": "application/json", "x-request-id": "r1"}


def test_body_excerpt_is_short() -> None:
    error = classify_http_error(_response(404, b"A" * 5000))
    assert isinstance(error, PermanentError)
    assert len(error.response["body"]) == 500
    assert len(str(error)) < 600


def test_unread_streaming_response_is_classified_without_body() -> None:
    response = httpx2.Response(502, stream=_Unread())
    error = classify_http_error(response)
    assert isinstance(error, TransientError) and error.response["body"] is None


class _Unread(httpx2.AsyncByteStream):
    pass


def test_success_is_not_an_error() -> None:
    with pytest.raises(ValueError):
        classify_http_error(_response(200))


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx2.ConnectError("refused"), TransientError),
        (httpx2.ReadTimeout("slow"), TransientError),
        (httpx2.RemoteProtocolError("garbled"), TransientError),
        (ConnectionResetError("reset"), TransientError),
        (httpx2.UnsupportedProtocol("ftp"), PermanentError),
        (httpx2.InvalidURL("bad"), PermanentError),
        (OutboundBlocked("refused: loopback"), PermanentError),
        (RuntimeError("boom"), PermanentError),
    ],
)
def test_exceptions(exc: BaseException, kind: type) -> None:
    error = classify_http_error(exc)
    assert type(error) is kind
    assert error.__cause__ is exc


def test_existing_delivery_errors_pass_through() -> None:
    original = TransientError("later", retry_after=3)
    assert classify_http_error(original) is original


def test_status_error_uses_its_response() -> None:
    request = httpx2.Request("GET", "https://example.test/")
    response = httpx2.Response(500, request=request, content=b"oops")
    exc = httpx2.HTTPStatusError("500", request=request, response=response)
    error = classify_http_error(exc)
    assert isinstance(error, TransientError) and error.status == 500


async def test_end_to_end_retry_after_from_a_real_server(server4: HTTPServer) -> None:
    server4.expect_request("/busy").respond_with_data(
        "try later", status=503, headers={"Retry-After": "7"}
    )
    async with create_http_client(OutboundPolicy(allowlist=("127.0.0.1/32",))) as c:
        response = await guarded_request(c, "GET", f"http://127.0.0.1:{server4.port}/busy")
    error = classify_http_error(response)
    assert isinstance(error, TransientError)
    assert error.retry_after == 7 and error.response["body"] == "try later"
