"""A real ``dripdrop worker`` process with JSON logs at DEBUG, a metrics port and a health file,
delivering webhooks that carry secrets and rendered bodies to a loopback server: every log line
is JSON with ids as fields, and no line holds a secret, a rendered body or a provider's answer."""

from __future__ import annotations

import json
import signal
import socket
import time
import uuid
from collections.abc import Iterator

import httpx2
import pytest
from ops_support import dripdrop_cli, sql
from pytest_httpserver import HTTPServer
from sqlalchemy import text
from werkzeug import Request, Response

from dripdrop import DripDrop
from dripdrop.crypto import generate_key

SIGNING_SECRET = "whsec_" + "c2lnbmluZy1zZWNyZXQtZm9yLWxvZ3MtdGVzdA=="
HEADER_SECRET = "Bearer header-secret-7f3a9c"
HOOK_TOKEN = "hook-token-51ab2e"
RENDERED = "rendered-marker-0c4d"
ANSWER = "provider-answer-9e21"


@pytest.fixture
def deployment(database_url: str) -> Iterator[tuple[DripDrop, str]]:
    key = generate_key()
    schema = f"dd_ops_{uuid.uuid4().hex[:10]}"
    dd = DripDrop(database_url, schema=schema, encryption_key=key, allow_private_network=True)
    dd.setup()
    try:
        yield dd, key
    finally:
        with dd.runtime.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        dd.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_worker_logs_json_without_secrets_and_serves_metrics_and_health(
    deployment, httpserver: HTTPServer, tmp_path
) -> None:
    dd, key = deployment

    def echo(status: int):  # the provider quotes what it got: a rendered body
        def handler(request: Request) -> Response:
            return Response(f"{ANSWER} {request.get_data(as_text=True)}", status=status)

        return handler

    httpserver.expect_request("/score").respond_with_json({"score": 9})
    httpserver.expect_request("/ok").respond_with_handler(echo(200))
    httpserver.expect_request("/bad").respond_with_handler(echo(400))
    httpserver.expect_request("/busy").respond_with_handler(echo(503))
    seq = dd.create_sequence(name="L", key="l")
    version = dd.create_sequence_version(seq.id, active=True)
    hook = dd.create_http_hook(
        seq.id,
        name="Score",
        key="score",
        url=httpserver.url_for("/score"),
        auth_type="bearer",
        auth_config={"token": HOOK_TOKEN},
        response_path="score",
        response_type="number",
        retry_count=0,
    )
    dd.create_channel_adapter(
        name="hooks",
        channel="webhook",
        provider="http",
        is_default=True,
        credentials={"signing_secret": SIGNING_SECRET, "headers": {"Authorization": HEADER_SECRET}},
        config={"base_url": httpserver.url_for("/")},
    )
    step = dd.create_step(
        version.id,
        name="ping",
        channel="webhook",
        config={"url": "{{ path }}", "body": {"note": "{{ note }}"}},
    )
    dd.create_condition(
        step.id, condition_type="hook", http_hook_id=hook.id, operator="gt", expected_value="1"
    )
    for i, path in enumerate(("ok", "bad", "busy")):
        dd.enroll(
            sequence_key="l",
            subscriber={"type": "User", "id": i},
            data={"path": path, "note": RENDERED},
        )

    port, health = _free_port(), tmp_path / "health.json"
    worker = dripdrop_cli(
        "worker",
        "--database-url",
        dd.runtime.database_url,
        "--schema",
        dd.schema,
        "--log-format",
        "json",
        "--log-level",
        "DEBUG",
        "--metrics-port",
        str(port),
        "--health-file",
        str(health),
        env={"DRIPDROP_ENCRYPTION_KEY": key, "DRIPDROP_ALLOW_PRIVATE_NETWORK": "true"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            done = sql(
                dd,
                "SELECT count(*) AS n FROM {s}.step_executions "
                "WHERE state <> 'scheduled' OR retry_count > 0",
            )
            if done[0].n == 3 and health.exists():
                break
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, "the worker did not deliver"
            time.sleep(0.2)
        scrape = httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        status = json.loads(health.read_text())
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err

    for outcome in ("sent", "failed", "retried"):
        line = (
            f'dripdrop_executions_total{{channel="webhook",outcome="{outcome}",provider="http",'
            f'schema="{dd.schema}"}} 1.0'
        )
        assert line in scrape
    assert f'dripdrop_delivery_seconds_count{{provider="http",schema="{dd.schema}"}} 3.0' in scrape
    assert status["status"] == "ok" and status["schema"] == dd.schema

    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert records, "no log lines"
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    failed = [r for r in records if r.get("outcome") == "failed"]
    bad = sql(
        dd, "SELECT id::text, enrollment_id::text FROM {s}.step_executions WHERE state = 'failed'"
    )
    assert [(r["execution_id"], r["enrollment_id"]) for r in failed] == [tuple(bad[0])]
    # The failure's reason is on the row (it quotes the answer), never in the logs.
    assert (
        ANSWER
        in sql(dd, "SELECT error_message FROM {s}.step_executions WHERE state = 'failed'")[0][0]
    )
    everything = out + err
    for secret in (
        SIGNING_SECRET,
        SIGNING_SECRET[6:],
        HEADER_SECRET,
        "header-secret",
        HOOK_TOKEN,
        RENDERED,
        ANSWER,
        key,
    ):
        assert secret not in everything, secret
