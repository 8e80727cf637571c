"""test_http_hook against PostgreSQL: a real call of a stored hook, the outcome stored on it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import text

from dripdrop import DripDrop
from dripdrop.crypto import generate_key
from dripdrop.errors import NotFound
from dripdrop.hooks import http as hooks_http
from dripdrop.records import HookTestResult

DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def dd() -> Iterator[DripDrop]:
    schema = f"t_hooks_{uuid.uuid4().hex[:8]}"
    instance = DripDrop(
        DATABASE_URL, schema=schema, encryption_key=generate_key(), allow_private_network=True
    )
    instance.setup()
    try:
        yield instance
    finally:
        with instance.runtime.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        instance.close()


def _hook(dd: DripDrop, server: HTTPServer, **kw):
    seq = dd.create_sequence(name="Onboarding", key="onboarding")
    values = dict(
        name="Lead Score",
        key="lead_score",
        url=server.url_for("/") + "users/{{ subscriber_id }}/score",
        auth_type="bearer",
        auth_config={"token": "s3cret"},
        response_path="score",
        response_type="number",
        retry_count=0,
    )
    values.update(kw)
    return dd.create_http_hook(seq.id, **values)


def test_success_is_stored(dd: DripDrop, server: HTTPServer) -> None:
    server.expect_request(
        "/users/u-7/score", method="POST", headers={"Authorization": "Bearer s3cret"}
    ).respond_with_json({"score": "81"})
    hook = _hook(dd, server)
    assert dd.get_http_hook(hook.id).last_test_at is None

    result = asyncio.run(hooks_http.test_http_hook(dd.runtime, hook.id, {"subscriber_id": "u-7"}))

    assert isinstance(result, HookTestResult)
    assert (result.ok, result.value, result.status, result.error) == (True, 81, 200, None)
    assert result.latency_ms is not None and result.latency_ms > 0
    stored = dd.get_http_hook(hook.id)
    assert stored.last_test_at is not None
    assert stored.last_test_result == {
        "ok": True,
        "status": 200,
        "value": 81,
        "error": None,
        "latency_ms": result.latency_ms,
        "missing": [],
    }


def test_failure_is_a_result_not_an_exception(dd: DripDrop, server: HTTPServer) -> None:
    server.expect_request("/users/u-8/score").respond_with_json(
        {"error": "no such user", "token_seen": "s3cret"}, status=404
    )
    hook = _hook(dd, server)
    result = asyncio.run(hooks_http.test_http_hook(dd.runtime, hook.id, {"subscriber_id": "u-8"}))
    assert result.ok is False and result.status == 404 and result.value is None
    assert "lead_score" in result.error and "404" in result.error
    assert "s3cret" not in result.error
    stored = dd.get_http_hook(hook.id).last_test_result
    assert stored["ok"] is False and stored["status"] == 404
    assert stored["error"] == result.error


def test_coercion_failure_is_stored(dd: DripDrop, server: HTTPServer) -> None:
    server.expect_request("/users/u-9/score").respond_with_json({"score": "abc"})
    hook = _hook(dd, server)
    result = asyncio.run(hooks_http.test_http_hook(dd.runtime, hook.id, {"subscriber_id": "u-9"}))
    assert result.ok is False
    assert result.error == "hook 'lead_score': expected a number at 'score', got 'abc'"
    assert dd.get_http_hook(hook.id).last_test_result["error"] == result.error


def test_default_policy_result_is_refusal(server: HTTPServer) -> None:
    # An instance without allow_private_network: the loopback hook is refused, nothing sent.
    schema = f"t_hooks_{uuid.uuid4().hex[:8]}"
    strict = DripDrop(DATABASE_URL, schema=schema, encryption_key=generate_key())
    strict.setup()
    try:
        hook = _hook(strict, server)
        result = asyncio.run(hooks_http.test_http_hook(strict.runtime, hook.id, {}))
        assert result.ok is False and result.status is None
        assert "lead_score" in result.error
        assert server.log == []
    finally:
        with strict.runtime.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        strict.close()


def test_unknown_hook_raises_not_found(dd: DripDrop) -> None:
    with pytest.raises(NotFound):
        asyncio.run(hooks_http.test_http_hook(dd.runtime, uuid.uuid4(), {}))


def test_the_result_names_what_test_data_lacked(dd: DripDrop, server: HTTPServer) -> None:
    server.expect_request("/users//score").respond_with_json({"error": "no id"}, status=404)
    hook = _hook(
        dd,
        server,
        headers={"X-Plan": "{{ plan }}"},
        body_template='{"email": "{{ data.email }}", "tier": "{{ tier }}"}',
    )
    result = dd.test_http_hook(hook.id, {"data": {"email": "a@example.com"}})
    assert result.ok is False
    assert result.missing == ("plan", "subscriber_id", "tier")
    assert result.error.endswith(
        "(test_data lacked plan, subscriber_id, tier, which rendered empty)"
    )
    assert dd.get_http_hook(hook.id).last_test_result["missing"] == [
        "plan",
        "subscriber_id",
        "tier",
    ]
