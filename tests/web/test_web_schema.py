"""Schemathesis against the app's own OpenAPI document, on a real DripDrop schema.

Every operation gets a bounded number of generated requests (derandomized, so a run is
repeatable) sent with an admin key: none may answer 5xx, and answers must match the responses the
document declares. The operations are read from the document itself, so routes added later are
covered without touching this file.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from dripdrop.web import create_app
from dripdrop.web.app import API_PREFIX

OPENAPI = f"{API_PREFIX}/openapi.json"
#: Generated cases per operation: keeps the whole module well under a minute.
MAX_EXAMPLES = 15
PROBLEM = "application/problem+json"


def conforms(ctx: Any, response: Any, case: Any) -> bool | None:
    """Answers match the document; errors are RFC 9457 problems.

    FastAPI's document declares its own 422 shape (``HTTPValidationError``, JSON) for every
    operation, while the app answers every error as ``application/problem+json`` (API.md): a
    problem answer is checked as a problem, everything else against the declared response.
    """
    content_type = (response.headers.get("content-type") or [""])[0]
    if response.status_code >= 400 and content_type.startswith(PROBLEM):
        body = response.json()
        assert body["status"] == response.status_code, body
        assert isinstance(body["title"], str) and isinstance(body["detail"], str), body
        if response.status_code == 422:
            errors = body["errors"]
            assert isinstance(errors, dict) and errors, body
            assert all(isinstance(m, list) and m for m in errors.values()), body
        return True
    response_schema_conformance(ctx, response, case)
    content_type_conformance(ctx, response, case)
    return True


CHECKS = [not_a_server_error, conforms]


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_ctx: Any, value: Any) -> bytes:
    """NDJSON bodies (``POST /enrollments/bulk``): a generated string as is, anything else as
    one JSON document per line."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()


class _CurrentApp:
    """The ASGI app the schema sends to: each test points it at an app on its own ``dd``, so the
    document is loaded and its operations resolved once per module."""

    def __init__(self) -> None:
        # Building the document needs no database: an app without an instance serves it.
        self.app: Any = create_app(None)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


CURRENT = _CurrentApp()
SCHEMA = schemathesis.openapi.from_asgi(OPENAPI, CURRENT)
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()}


def _streams(label: str) -> bool:
    # An event stream stays open: in process, a 200 answer ends only when the app notices the
    # client left (tens of seconds per case), so streams have their own tests
    # (test_web_executions: live events, Last-Event-ID replay, 401/422).
    responses = json.dumps(OPERATIONS[label].definition.raw.get("responses", {}))
    return "text/event-stream" in responses or label.endswith("/stream")


LABELS = sorted(label for label in OPERATIONS if not _streams(label))


def test_the_document_is_openapi_3_1_and_lists_the_routes() -> None:
    from fastapi.testclient import TestClient

    with TestClient(create_app(None)) as client:
        doc = client.get(OPENAPI).json()
    assert doc["openapi"].startswith("3.1")
    assert f"GET {API_PREFIX}/sequences" in LABELS and "GET /health" in LABELS


@pytest.mark.parametrize("label", LABELS)
def test_operation_has_no_server_errors_and_conforms(dd, label: str) -> None:
    CURRENT.app = create_app(dd)
    key = dd.create_api_key("schemathesis", scopes=["admin"])
    headers = {"Authorization": f"Bearer {key.secret}"}
    # Something to find: generated ids mostly miss, but lists and lookups get real rows.
    seq = dd.create_sequence(name="Schema", key="schema_seq")
    dd.create_sequence_version(seq.id, active=False)
    operation = OPERATIONS[label]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    try:
        run()
    finally:
        CURRENT.app = create_app(None)
