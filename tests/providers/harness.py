"""A table-driven contract harness for the HTTP providers (in the spirit of Apprise's REST tests).

Each :class:`Case` says what a provider's API expects (path, method, auth, content type,
required fields) and what it answers (success, a 4xx, a 429, a 5xx). :class:`FakeProvider`
serves a case on 127.0.0.1 and checks each request the way the real API would: a wrong path,
auth or missing field gets the API's own rejection, so a provider that builds a bad request
fails the success test instead of passing it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from dripdrop.channels import AdapterInfo, Message

IDEMPOTENCY_KEY = "exec_42-step_1-attempt"
SCENARIOS = ("success", "client_error", "rate_limited", "server_error", "echo")


@dataclass(frozen=True)
class Answer:
    """A canned provider answer: dict bodies are sent as JSON, str bodies as text."""

    status: int
    body: Any = ""
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        if isinstance(self.body, dict | list):
            data, mimetype = json.dumps(self.body), "application/json"
        else:
            data, mimetype = str(self.body), "text/plain"
        return Response(data, status=self.status, headers=self.headers, mimetype=mimetype)


def header_equals(name: str, value: str) -> Callable[[Request], bool]:
    """Auth check: a header with exactly this value."""
    return lambda request: request.headers.get(name) == value


def basic_auth(user: str, password: str) -> Callable[[Request], bool]:
    """Auth check: HTTP Basic with these credentials."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return header_equals("Authorization", f"Basic {token}")


def bearer(token: str) -> Callable[[Request], bool]:
    """Auth check: ``Authorization: Bearer <token>``."""
    return header_equals("Authorization", f"Bearer {token}")


def no_auth(request: Request) -> bool:
    """Auth check for providers whose secret is the URL itself."""
    return True


@dataclass
class Case:
    """One provider's contract. ``{base}`` in credentials, config and recipient is replaced by
    the fake server's root URL (or a closed port, to test refused connections)."""

    id: str
    channel: str
    provider: str
    credentials: dict[str, Any]
    config: dict[str, Any]
    recipient: str | None
    fields: dict[str, Any]
    path: str
    auth: Callable[[Request], bool]
    content_type: str  # "json" or "form"
    required: tuple[str, ...]
    success: Answer
    expected_id: str | None
    client_error: Answer
    unauthorized: Answer
    rate_limited: Answer
    expected_retry_after: float | None
    bad_credentials: dict[str, Any]
    secrets: tuple[str, ...]
    server_error: Answer = field(default_factory=lambda: Answer(503, "Service Unavailable"))
    not_found: Answer | None = None  # the API's answer to a wrong path (default unauthorized)
    method: str = "POST"
    query: dict[str, str] = field(default_factory=dict)
    # Extra provider-specific check; returns a problem description or None.
    verify: Callable[[Request, Any], str | None] | None = None
    required_credential: str | None = None

    def adapter(self, base: str, credentials: dict[str, Any] | None = None) -> AdapterInfo:
        creds = {**self.credentials, **(credentials or {})}
        return AdapterInfo(
            id="ad_1",
            name=f"{self.id}-test",
            channel=self.channel,
            provider=self.provider,
            credentials=_fill(creds, base),
            config=_fill(self.config, base),
        )

    def message(self, base: str) -> Message:
        return Message(
            channel=self.channel,
            recipient=_fill(self.recipient, base),
            fields=dict(self.fields),
            execution_id="exec_42",
            idempotency_key=IDEMPOTENCY_KEY,
        )


def _fill(value: Any, base: str) -> Any:
    if isinstance(value, str):
        return value.replace("{base}", base)
    if isinstance(value, dict):
        return {k: _fill(v, base) for k, v in value.items()}
    return value


def parse_request(case: Case, request: Request) -> tuple[Any, str | None]:
    """The request body as the API would read it, or a problem."""
    if case.content_type == "json":
        if request.mimetype != "application/json":
            return None, f"content type {request.mimetype!r}, expected application/json"
        try:
            return json.loads(request.get_data(as_text=True)), None
        except ValueError:
            return None, "body is not JSON"
    if request.mimetype != "application/x-www-form-urlencoded":
        return None, f"content type {request.mimetype!r}, expected a form"
    return request.form.to_dict(flat=False), None


class FakeProvider:
    """Serves one case: checks each request, records it, answers with the chosen scenario."""

    def __init__(self, server: HTTPServer, case: Case, scenario: str = "success") -> None:
        self.case, self.scenario = case, scenario
        self.requests: list[dict[str, Any]] = []
        self.rejections: list[str] = []
        server.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    def _reject(self, problem: str, answer: Answer) -> Response:
        self.rejections.append(problem)
        return answer.response()

    def _handle(self, request: Request) -> Response:
        case = self.case
        body, problem = parse_request(case, request)
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "args": request.args.to_dict(),
                "headers": dict(request.headers),
                "body": body,
                "raw": request.get_data(as_text=True),
            }
        )
        if self.scenario == "echo":
            # A careless API that quotes the request URL and the credentials back.
            return Answer(400, f"bad request to {request.url}: {' '.join(case.secrets)}").response()
        if request.path != case.path or request.method != case.method:
            return self._reject(
                f"{request.method} {request.path}", case.not_found or case.unauthorized
            )
        if not case.auth(request):
            return self._reject("auth", case.unauthorized)
        if problem:
            return self._reject(problem, case.client_error)
        for key, value in case.query.items():
            if request.args.get(key) != value:
                return self._reject(f"query {key}", case.client_error)
        missing = [name for name in case.required if not (body or {}).get(name)]
        if missing:
            return self._reject(f"missing {missing}", case.client_error)
        if case.verify and (problem := case.verify(request, body)):
            return self._reject(problem, case.unauthorized)
        return getattr(case, self.scenario).response()
