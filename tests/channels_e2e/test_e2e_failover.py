"""Failover through the engine with real local Mailgun servers.

Two mailgun adapters are in a step's rotation. After enrolling, the test computes which adapter
the sticky choice gives the enrollment ("first") and makes that one's server fail, so the test is
deterministic whatever the enrollment id is.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from dripdrop.engine.routing import sticky_pick

DOMAIN = "mg.example.com"
PATH = f"/v3/{DOMAIN}/messages"
EMAIL = {"subject": "Hello {{ name }}", "body": "<p>Hi {{ name }}</p>", "max_retries": 3}


@pytest.fixture
def servers() -> Iterator[tuple[HTTPServer, HTTPServer]]:
    pair = (HTTPServer(host="127.0.0.1", port=0), HTTPServer(host="127.0.0.1", port=0))
    for server in pair:
        server.start()
    try:
        yield pair
    finally:
        for server in pair:
            server.clear()
            if server.is_running():
                server.stop()


def _mailgun(dd, name: str, base_url: str, key: str):
    return dd.create_channel_adapter(
        name=name,
        channel="email",
        provider="mailgun",
        credentials={"api_key": key},
        config={"domain": DOMAIN, "base_url": base_url, "from": f"{name} <news@x.io>"},
        is_default=False,
    )


def _ok(message_id: str):
    def handler(request: Request) -> Response:
        return Response(
            f'{{"id": "<{message_id}>", "message": "Queued. Thank you."}}',
            status=200,
            mimetype="application/json",
        )

    return handler


def _setup(dd, make_sequence, url_a: str, url_b: str):
    """Adapters A (key-a) and B (key-b) in a step rotation; one enrollment. Returns
    (enrollment, first, second) where first is the adapter the sticky choice picks."""
    a = _mailgun(dd, "A", url_a, "key-a")
    b = _mailgun(dd, "B", url_b, "key-b")
    step = {
        "name": "welcome",
        "channel": "email",
        "config": {**EMAIL, "channel_adapter_rotation": [str(a.id), str(b.id)]},
    }
    make_sequence([step])
    enrollment = dd.enroll(
        "s", {"type": "User", "id": 1}, data={"email": "ada@x.io", "name": "Ada"}
    )
    index = sticky_pick([(a.id, 1.0), (b.id, 1.0)], enrollment.id, "email")
    first, second = (a, b) if index == 0 else (b, a)
    return enrollment, first, second


def _auth(key: str) -> str:
    return "Basic " + base64.b64encode(f"api:{key}".encode()).decode()


def _key(adapter) -> str:
    return {"A": "key-a", "B": "key-b"}[adapter.name]


def test_503_is_retried_on_the_next_adapter(env, dd, make_sequence, servers) -> None:
    s1, s2 = servers
    enrollment, first, second = _setup(dd, make_sequence, s1.url_for(""), s2.url_for(""))
    failing, healthy = (s1, s2) if first.name == "A" else (s2, s1)
    failing.expect_request(PATH, method="POST").respond_with_data("Service Unavailable", status=503)
    healthy.expect_request(
        PATH, method="POST", headers={"Authorization": _auth(_key(second))}
    ).respond_with_handler(_ok("m-1@mg.example.com"))

    dd.run_due()
    (ex,) = dd.list_executions(enrollment.id)
    assert ex.state == "scheduled", ex.error_message
    assert ex.retry_count == 1
    assert "Service Unavailable" in ex.error_message
    assert ex.response["status"] == 503
    assert len(failing.log) == 1 and len(healthy.log) == 0

    env.advance_and_run(minutes=5)
    (ex,) = dd.list_executions(enrollment.id)
    assert ex.state == "sent", ex.error_message
    assert ex.retry_count == 1
    assert ex.response["adapter"] == second.name
    assert ex.response["provider"] == "mailgun"
    assert ex.response["provider_message_id"] == "<m-1@mg.example.com>"
    assert len(failing.log) == 1, "the failed adapter is not called again"
    assert len(healthy.log) == 1
    request, _ = healthy.log[0]
    form = parse_qs(request.get_data(as_text=True))
    assert form["to"] == ["ada@x.io"]
    assert form["subject"] == ["Hello Ada"]
    assert form["from"] == [f"{second.name} <news@x.io>"], "the second adapter's own config"
    healthy.check_assertions()


def test_connection_refused_fails_over(env, dd, make_sequence, servers, closed_url) -> None:
    s1, _ = servers
    # The first choice points at a closed port, the other at a live server.
    a = _mailgun(dd, "A", closed_url, "key-a")
    b = _mailgun(dd, "B", s1.url_for(""), "key-b")
    step = {
        "name": "welcome",
        "channel": "email",
        "config": {**EMAIL, "channel_adapter_rotation": [str(a.id), str(b.id)]},
    }
    make_sequence([step])
    # Find a subscriber whose enrollment sticks to A first (the dead one).
    for i in range(1, 50):
        enrollment = dd.enroll("s", {"type": "User", "id": i}, data={"email": f"u{i}@x.io"})
        if sticky_pick([(a.id, 1.0), (b.id, 1.0)], enrollment.id, "email") == 0:
            break
        dd.unenroll("s", "User", str(i))
    else:
        pytest.fail("no enrollment picked A first in 49 tries")
    s1.expect_request(PATH, method="POST").respond_with_handler(_ok("m-2@mg.example.com"))

    dd.run_due()
    (ex,) = dd.list_executions(enrollment.id)
    assert ex.state == "scheduled", ex.error_message
    assert ex.retry_count == 1
    assert "network error" in ex.error_message
    assert len(s1.log) == 0

    env.advance_and_run(minutes=5)
    (ex,) = dd.list_executions(enrollment.id)
    assert ex.state == "sent", ex.error_message
    assert ex.response["adapter"] == "B"
    assert len(s1.log) == 1


def test_400_fails_at_once_without_failover(env, dd, make_sequence, servers) -> None:
    s1, s2 = servers
    enrollment, first, _ = _setup(dd, make_sequence, s1.url_for(""), s2.url_for(""))
    failing, other = (s1, s2) if first.name == "A" else (s2, s1)
    failing.expect_request(PATH, method="POST").respond_with_json(
        {"message": "'to' parameter is not a valid address."}, status=400
    )
    other.expect_request(PATH, method="POST").respond_with_handler(_ok("never"))

    dd.run_due()
    (ex,) = dd.list_executions(enrollment.id)
    assert ex.state == "failed"
    assert ex.retry_count == 0
    assert "not a valid address" in ex.error_message
    assert ex.response["status"] == 400
    env.advance_and_run(hours=1)
    (ex,) = dd.list_executions(enrollment.id)
    assert ex.state == "failed"
    assert len(failing.log) == 1
    assert len(other.log) == 0, "a permanent failure never moves to another adapter"


def test_both_adapters_down_fails_after_max_retries(env, dd, make_sequence, servers) -> None:
    """Failover alternates between the two (A, B, A, B) and gives up after max_retries."""
    s1, s2 = servers
    enrollment, first, _ = _setup(dd, make_sequence, s1.url_for(""), s2.url_for(""))
    for server in servers:
        server.expect_request(PATH, method="POST").respond_with_data("busy", status=503)
    dd.run_due()
    for _ in range(3):
        env.advance_and_run(hours=1)
    (ex,) = dd.list_executions(enrollment.id)
    assert ex.state == "failed"
    assert ex.retry_count == 3
    assert "failed after 4 attempts" in ex.error_message
    first_server, second_server = (s1, s2) if first.name == "A" else (s2, s1)
    assert (len(first_server.log), len(second_server.log)) == (2, 2)
