"""HTTP hooks at runtime: render the request, call through the guard, retry, extract a value.

A hook's ``url``, header values and ``body_template`` are Liquid templates rendered with the
execution context. The URL is rendered as is — values are NOT URL-encoded, so a template that
puts free text into the path should use Liquid's ``url_encode`` filter. A rendered body that
parses as JSON is sent as ``application/json``, anything else as ``text/plain``.

Transient failures (network errors, timeouts, 5xx, 429) are retried ``retry_count`` times with a
short exponential backoff (``Retry-After`` honoured up to 5 s); permanent ones (other 4xx, guard
refusals) fail at once. Error messages name the hook and the status and never carry the hook's
auth secrets.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from dripdrop.channels.http import Secrets, scrub_response
from dripdrop.db import models as m
from dripdrop.errors import DripDropError, PermanentError, TransientError
from dripdrop.hooks.extract import extract, raw_excerpt
from dripdrop.net import classify_http_error, create_http_client, guarded_request
from dripdrop.observability.tracing import inject_headers
from dripdrop.records import HookTestResult
from dripdrop.templates import referenced_names, render_string

H = m.HttpHook.__table__
BACKOFF_BASE = 0.2  # seconds; doubled per attempt
BACKOFF_CAP = 2.0
RETRY_AFTER_CAP = 5.0  # a hook feeds a running step: never park it for long
_sleep = asyncio.sleep  # module-level so tests can observe the waits


@dataclass(frozen=True)
class HookCallResult:
    """A successful hook call. ``raw`` is the parsed body (or a text excerpt) for the log, ≤ 2 KB;
    ``latency_ms`` covers the whole call, retries included."""

    value: Any
    status: int | None
    latency_ms: float
    raw: Any


def hook_auth(rt: Any, hook: Any) -> dict[str, Any]:
    """The decrypted ``auth_config`` of a stored row (bytes) or a record (a Secret)."""
    sealed = getattr(hook, "auth_config", None)
    if not sealed:
        return {}
    if hasattr(sealed, "reveal"):
        return dict(sealed.reveal() or {})
    if isinstance(sealed, Mapping):
        return dict(sealed)
    from dripdrop.definitions.secrets import unseal

    return dict(unseal(rt, "http_hooks", "auth_config", hook.id, sealed).reveal() or {})


def _auth_headers(auth_type: str, auth: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The auth header and the secret strings that must never appear in a message."""
    if auth_type == "bearer":
        token = str(auth.get("token", ""))
        return {"Authorization": f"Bearer {token}"}, [token]
    if auth_type == "basic":
        password = str(auth.get("password", ""))
        pair = f"{auth.get('username', '')}:{password}".encode()
        encoded = base64.b64encode(pair).decode("ascii")
        return {"Authorization": f"Basic {encoded}"}, [password, encoded]
    if auth_type == "header":
        value = str(auth.get("value", ""))
        return {str(auth.get("name", "")): value}, [value]
    return {}, []


def _redact(value: Any, secrets: list[str]) -> Any:
    """``value`` with every secret masked, in every encoding (strings, dicts and lists)."""
    return Secrets(secrets).scrub(value)


def _render(source: str, context: Mapping[str, Any], key: str, field: str) -> str:
    try:
        return render_string(source, context)
    except PermanentError as exc:
        raise PermanentError(f"hook {key!r}: cannot render {field}: {exc}") from None


def _build(hook: Any, context: Mapping[str, Any], auth: dict[str, Any]) -> dict[str, Any]:
    """Method, URL, headers and body of the request (kwargs for guarded_request)."""
    key = hook.key
    headers = {
        str(name): _render(str(value), context, key, f"header {name}")
        for name, value in (hook.headers or {}).items()
    }
    given = {name.lower() for name in headers}
    if hook.response_type != "text" and "accept" not in given:
        headers["Accept"] = "application/json"
    content = None
    if hook.body_template:
        body = _render(hook.body_template, context, key, "body_template")
        if body.strip():
            try:
                json.loads(body)
                content_type = "application/json"
            except ValueError:
                content_type = "text/plain; charset=utf-8"
            if "content-type" not in given:
                headers["Content-Type"] = content_type
            # Sent as rendered (not re-serialised), so the server sees exactly the template.
            content = body.encode("utf-8")
    auth_headers, _ = _auth_headers(hook.auth_type or "none", auth)
    headers.update(auth_headers)  # auth wins over a same-named plain header
    inject_headers(headers)  # W3C traceparent of the hook's span, when tracing is on
    return {
        "method": (hook.method or "POST").upper(),
        "url": _render(hook.url, context, key, "url").strip(),
        "headers": headers,
        "content": content,
        "timeout": (hook.timeout_ms or 5000) / 1000,
    }


def _delay(attempt: int, error: TransientError) -> float:
    if error.retry_after is not None:
        return min(error.retry_after, RETRY_AFTER_CAP)
    return min(BACKOFF_BASE * 2**attempt, BACKOFF_CAP)


def _final(hook: Any, error: DripDropError, attempts: int, secrets: list[str]) -> DripDropError:
    """The error to raise: names the hook, the status and the attempts; secrets masked."""
    tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
    message = _redact(f"hook {hook.key!r} failed{tries}: {error}", secrets)
    status = getattr(error, "status", None)
    response = _redact(getattr(error, "response", None), secrets)
    if isinstance(error, TransientError):
        return TransientError(
            message, retry_after=error.retry_after, response=response, status=status
        )
    return PermanentError(message, response=response, status=status)


async def call_http_hook(
    rt: Any, hook: Any, context: Mapping[str, Any], client: Any
) -> HookCallResult:
    """Call one HTTP hook and return its value.

    ``hook`` is an ``http_hooks`` row (``auth_config`` encrypted bytes) or a
    :class:`dripdrop.records.HttpHook` (``auth_config`` a Secret); ``client`` comes from
    :func:`dripdrop.net.create_http_client`. Raises TransientError (retries exhausted) or
    PermanentError (4xx, guard refusal, bad template, value missing or of the wrong type).
    """
    auth = hook_auth(rt, hook)
    _, secrets = _auth_headers(hook.auth_type or "none", auth)
    request = _build(hook, context, auth)
    attempts = max(int(hook.retry_count or 0), 0) + 1
    started = time.perf_counter()
    for attempt in range(attempts):
        try:
            # Scrubbed before anything reads it: error excerpts must not cut a secret in half.
            response = scrub_response(await guarded_request(client, **request), Secrets(secrets))
            if response.is_success:
                break
            error: DripDropError = classify_http_error(response)
        except Exception as exc:  # network errors, timeouts, guard refusals, caps
            error = classify_http_error(exc)
        if isinstance(error, TransientError) and attempt + 1 < attempts:
            await _sleep(_delay(attempt, error))
            continue
        raise _final(hook, error, attempt + 1, secrets) from error.__cause__
    latency_ms = (time.perf_counter() - started) * 1000
    content_type = response.headers.get("content-type", "")
    try:
        value = extract(
            response.text, content_type, hook.response_type or "json", hook.response_path, hook.key
        )
    except PermanentError as exc:
        raise PermanentError(_redact(str(exc), secrets), status=response.status_code) from None
    raw = _redact(raw_excerpt(response.text, content_type), secrets)
    return HookCallResult(value, response.status_code, round(latency_ms, 3), raw)


def load_hook_row(rt: Any, hook_id: Any) -> Any:
    """The ``http_hooks`` row of ``hook_id`` (NotFound when absent)."""
    from dripdrop.definitions.common import get_row

    with rt.engine.begin() as conn:
        return get_row(conn, H, hook_id, "HTTP hook")


def template_names(hook: Any) -> set[str]:
    """The top-level variables the hook's url, header values and body template read."""
    sources = {"url": hook.url, "body": hook.body_template or ""}
    sources.update({f"header {n}": str(v) for n, v in (hook.headers or {}).items()})
    return referenced_names(sources)


def store_test_result(rt: Any, hook_id: Any, result: HookTestResult) -> None:
    """Record a test call on the hook: ``last_test_at`` and ``last_test_result``."""
    stored = {
        "ok": result.ok,
        "status": result.status,
        "value": result.value,
        "error": result.error,
        "latency_ms": result.latency_ms,
        "missing": list(result.missing),
    }
    with rt.engine.begin() as conn:
        stmt = update(H).where(H.c.id == hook_id)
        conn.execute(stmt.values(last_test_at=rt.now(), last_test_result=stored))


async def test_http_hook(
    rt: Any, hook_id: Any, test_data: dict[str, Any] | None, client: Any | None = None
) -> HookTestResult:
    """Make a real call of a stored hook with ``test_data`` as the context and store the outcome.

    The context is ``test_data`` itself (so ``{{ subscriber_id }}`` reads ``test_data
    ["subscriber_id"]``) plus ``data`` = ``test_data``, as in a real execution. A failed call is
    a result with ``ok=False`` and the error text, not an exception; an unknown id raises NotFound.
    """
    from dripdrop.definitions.inputs import check_json

    data = check_json(test_data, "test_data") or {}
    row = await asyncio.to_thread(load_hook_row, rt, hook_id)
    context = {**data, "data": data.get("data", data)}
    missing = tuple(sorted(template_names(row) - context.keys()))
    own = client is None
    if own:
        client = create_http_client(rt.policy)
    started = time.perf_counter()
    try:
        call = await call_http_hook(rt, row, context, client)
        result = HookTestResult(True, call.value, call.status, None, call.latency_ms, missing)
    except DripDropError as exc:
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        status = getattr(exc, "status", None)
        error = str(exc)
        if missing:
            error += f" (test_data lacked {', '.join(missing)}, which rendered empty)"
        result = HookTestResult(False, None, status, error, elapsed, missing)
    finally:
        if own:
            await client.aclose()
    await asyncio.to_thread(store_test_result, rt, row.id, result)
    return result


test_http_hook.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported
