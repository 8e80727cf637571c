"""What an HTTP hook returns: response types, coercion, dot paths and JSONPath."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from dripdrop.errors import PermanentError
from dripdrop.hooks.http import call_http_hook


async def _call(server: HTTPServer, client, make_hook, answer, **hook_kw):
    if isinstance(answer, str):
        server.expect_request("/hook").respond_with_data(answer, content_type="text/plain")
    else:
        server.expect_request("/hook").respond_with_json(answer)
    return await call_http_hook(None, make_hook(**hook_kw), {}, client)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"score": 72}, 72),
        ({"score": 72.0}, 72),
        ({"score": 72.5}, 72.5),
        ({"score": "72"}, 72),
        ({"score": " 72.5 "}, 72.5),
        ({"score": -3}, -3),
    ],
)
async def test_number(server, client, make_hook, answer, expected) -> None:
    result = await _call(
        server, client, make_hook, answer, response_path="score", response_type="number"
    )
    assert result.value == expected
    assert type(result.value) is type(expected)


async def test_number_from_plain_text_body(server, client, make_hook) -> None:
    result = await _call(server, client, make_hook, "42", response_type="number")
    assert result.value == 42


@pytest.mark.parametrize("bad", ["abc", True, None, [1], {"a": 1}, "NaN"])
async def test_number_coercion_error(server, client, make_hook, bad) -> None:
    with pytest.raises(PermanentError) as info:
        await _call(
            server, client, make_hook, {"score": bad}, response_path="score", response_type="number"
        )
    assert str(info.value).startswith("hook 'lead_score': expected a number at 'score', got ")


async def test_number_error_message_exact(server, client, make_hook) -> None:
    with pytest.raises(PermanentError) as info:
        await _call(
            server,
            client,
            make_hook,
            {"score": "abc"},
            response_path="score",
            response_type="number",
        )
    assert str(info.value) == "hook 'lead_score': expected a number at 'score', got 'abc'"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("FALSE", False),
        (1, True),
        (0, False),
        ("yes", True),
        ("no", False),
    ],
)
async def test_boolean(server, client, make_hook, raw, expected) -> None:
    result = await _call(
        server, client, make_hook, {"vip": raw}, response_path="vip", response_type="boolean"
    )
    assert result.value is expected


@pytest.mark.parametrize("bad", ["maybe", 2, None])
async def test_boolean_coercion_error(server, client, make_hook, bad) -> None:
    with pytest.raises(PermanentError, match="expected a boolean at 'vip'"):
        await _call(
            server, client, make_hook, {"vip": bad}, response_path="vip", response_type="boolean"
        )


async def test_boolean_from_plain_text_body(server, client, make_hook) -> None:
    result = await _call(server, client, make_hook, "yes", response_type="boolean")
    assert result.value is True


async def test_text_whole_body(server, client, make_hook) -> None:
    result = await _call(server, client, make_hook, "Hello there", response_type="text")
    assert result.value == "Hello there"
    assert result.raw == "Hello there"


async def test_text_with_path_stringifies(server, client, make_hook) -> None:
    result = await _call(
        server,
        client,
        make_hook,
        {"data": {"tier": 3}},
        response_path="data.tier",
        response_type="text",
    )
    assert result.value == "3"


async def test_json_whole_body_and_raw(server, client, make_hook) -> None:
    answer = {"data": {"items": [{"score": 1}, {"score": 2}]}}
    result = await _call(server, client, make_hook, answer, response_type="json")
    assert result.value == answer
    assert result.raw == answer
    assert result.status == 200
    assert result.latency_ms > 0


async def test_json_not_json_is_permanent(server, client, make_hook) -> None:
    with pytest.raises(PermanentError, match=r"lead_score.*not JSON"):
        await _call(server, client, make_hook, "<html>oops</html>", response_type="json")


async def test_dot_path_through_list(server, client, make_hook) -> None:
    answer = {"data": {"items": [{"score": 1}, {"score": 2}]}}
    result = await _call(
        server,
        client,
        make_hook,
        answer,
        response_path="data.items.1.score",
        response_type="number",
    )
    assert result.value == 2


async def test_jsonpath(server, client, make_hook) -> None:
    answer = {"data": {"scores": [88, 12]}}
    result = await _call(
        server, client, make_hook, answer, response_path="$.data.scores[0]", response_type="number"
    )
    assert result.value == 88


async def test_json_null_at_path_is_a_value(server, client, make_hook) -> None:
    result = await _call(server, client, make_hook, {"tier": None}, response_path="tier")
    assert result.value is None


@pytest.mark.parametrize("path", ["data.missing", "data.items.5", "$.data.nothing[0]"])
async def test_missing_path(server, client, make_hook, path) -> None:
    with pytest.raises(PermanentError) as info:
        await _call(server, client, make_hook, {"data": {"items": [1]}}, response_path=path)
    assert f"hook 'lead_score': the response has nothing at {path!r}" == str(info.value)


async def test_raw_is_capped(server, client, make_hook) -> None:
    answer = {"blob": "x" * 5000, "score": 1}
    result = await _call(
        server, client, make_hook, answer, response_path="score", response_type="number"
    )
    assert result.value == 1
    assert isinstance(result.raw, str) and len(result.raw.encode()) <= 2048
