"""The worker's health port (``dripdrop worker --health-port``, ``run_worker(health_port=...)``):
a real worker process answers ``GET /health`` and ``/ready`` with 200 while its loop runs and its
database answers, 503 while its event loop is stalled or its database is gone (and 200 again
after), and a port it cannot use is a one-line error naming it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from ops_support import dripdrop_cli, sql, two_step_sequence
from sqlalchemy import text

from dripdrop import DripDrop, ValidationError

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "chaos"))  # chaos_support: a private PostgreSQL server


@pytest.fixture
def deployment(database_url: str) -> Iterator[DripDrop]:
    schema = f"dd_health_{uuid.uuid4().hex[:10]}"
    dd = DripDrop(database_url, schema=schema)
    dd.setup()
    try:
        yield dd
    finally:
        with dd.runtime.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        dd.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    response = httpx2.get(f"http://127.0.0.1:{port}{path}", timeout=5)
    return response.status_code, response.json()


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, proc: subprocess.Popen[str]
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = condition()
        except httpx2.TransportError:  # not listening yet
            found = None
        if found:
            return found
        if proc.poll() is not None:
            _out, err = proc.communicate()
            raise AssertionError(f"the worker exited ({proc.returncode}) before {what}:\n{err}")
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.1)


def answers(port: int, path: str, status: int) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        code, body = get(port, path)
        return body if code == status else None

    return check


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def health_worker(url: str, schema: str, port: int, stall: Path, beat: float) -> Any:
    """tests/ops/health_worker.py as its own process: beats every ``beat`` seconds."""
    return subprocess.Popen(
        [sys.executable, str(HERE / "health_worker.py")],
        env={
            **os.environ,
            "DD_URL": url,
            "DD_SCHEMA": schema,
            "DD_HEALTH_PORT": str(port),
            "DD_BEAT": str(beat),
            "DD_STALL": str(stall),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_worker_process_answers_health_and_ready_on_its_port(deployment) -> None:
    dd = deployment
    two_step_sequence(dd)
    dd.enroll("s", {"type": "User", "id": 1}, data={"email": "u1@x.io"})
    port = free_port()
    worker = dripdrop_cli(
        "worker",
        "--database-url",
        dd.runtime.database_url,
        "--schema",
        dd.schema,
        "--health-port",
        str(port),
        env={},
    )
    try:
        body = wait_for(answers(port, "/ready", 200), 60, "/ready to answer 200", worker)
        code, health = get(port, "/health")
        wait_for(
            lambda: (
                sql(dd, "SELECT count(*) FROM {s}.step_executions WHERE state = 'sent'")[0][0] == 2
            ),
            60,
            "both steps sent",
            worker,
        )
        missing = httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        _out, err = stop(worker)
    assert worker.returncode == 0, err
    assert code == 200 and health["state"] == "ok", health
    assert body["state"] == "ok" and body["database"] == "ok" and body["schema"] == dd.schema
    assert body["pid"] == worker.pid and body["in_flight"] >= 0
    assert body["lag_seconds"] >= 0 and body["loop_seconds_ago"] < body["stale_after_seconds"]
    assert body["stale_after_seconds"] == 30.0  # the health file's rule: 6 beats of 5 s
    assert {"last_loop", "worker"} <= body.keys()
    assert missing.status_code == 404
    assert f"health on http://127.0.0.1:{port}/health" in err
    with pytest.raises(httpx2.TransportError):  # a stopped worker's port is closed
        httpx2.get(f"http://127.0.0.1:{port}/health", timeout=2)


def test_a_stalled_event_loop_answers_503_then_200_once_it_runs_again(deployment, tmp_path) -> None:
    dd = deployment
    port, stall = free_port(), tmp_path / "stall"
    worker = health_worker(dd.runtime.database_url, dd.schema, port, stall, beat=0.2)
    try:
        wait_for(answers(port, "/health", 200), 60, "/health to answer 200", worker)
        wait_for(answers(port, "/ready", 200), 10, "/ready to answer 200", worker)
        # Written whole, then renamed: the worker polls for the file and must never read it
        # half-written (empty: no stall). The loop sleeps 6 s; stalled after 6 missed beats.
        staged = tmp_path / "stall.tmp"
        staged.write_text("6")
        staged.replace(stall)
        started = time.monotonic()
        body = wait_for(answers(port, "/health", 503), 10, "/health to answer 503", worker)
        noticed = time.monotonic() - started
        ready, _ = get(port, "/ready")
        assert stall.exists() is False
        body_after = wait_for(answers(port, "/health", 200), 20, "/health 200 again", worker)
        recovered = time.monotonic() - started
    finally:
        _out, err = stop(worker)
    assert worker.returncode == 0, err
    assert body["state"] == "stalled" and body["loop_seconds_ago"] > 1.2, body
    assert body["stale_after_seconds"] == pytest.approx(1.2)
    assert ready == 503
    assert body_after["state"] == "ok"
    assert noticed < 6 and recovered >= 5, (noticed, recovered)  # answered during the stall
    print(f"\nstall noticed after {noticed:.1f} s; 200 again {recovered:.1f} s after it began")


def test_a_worker_whose_database_dies_answers_503_and_200_once_it_is_back(tmp_path) -> None:
    from chaos_support import PgInstance

    pg = PgInstance(tmp_path)
    pg.start()
    schema = "dd_health_pg"
    worker = None
    try:
        dd = DripDrop(pg.url, schema=schema)
        dd.setup()
        dd.close()
        port = free_port()
        worker = health_worker(pg.url, schema, port, tmp_path / "stall", beat=0.2)
        wait_for(answers(port, "/ready", 200), 60, "/ready to answer 200", worker)
        started = time.monotonic()
        pg.stop()  # immediate shutdown: every connection is cut
        body = wait_for(answers(port, "/health", 503), 30, "/health to answer 503", worker)
        noticed = time.monotonic() - started
        ready, ready_body = get(port, "/ready")
        pg.start()
        wait_for(answers(port, "/health", 200), 60, "/health 200 again", worker)
        again = wait_for(answers(port, "/ready", 200), 30, "/ready 200 again", worker)
    finally:
        if worker is not None:
            _out, err = stop(worker)
        pg.stop()
    assert worker.returncode == 0, err
    assert body["state"] == "degraded" and body["database"] == "unreachable", body
    assert body["lag_seconds"] is None
    assert ready == 503 and ready_body["database"] == "unreachable"
    assert again["state"] == "ok" and again["database"] == "ok"
    print(f"\n/health answered 503 {noticed:.1f} s after the database's shutdown began")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"health_port": 70000}, "health_port"),
        ({"health_port": -1}, "health_port"),
        ({"health_port": True}, "health_port"),
        ({"health_port": "8080"}, "health_port"),
        ({"health_port": 0, "health_host": ""}, "health_host"),
        ({"health_port": 0, "health_host": 127}, "health_host"),
    ],
)
def test_bad_health_options_are_validation_errors(dd, options, field) -> None:
    with pytest.raises(ValidationError) as info:
        dd.run_worker(handle_signals=False, **options)
    assert set(info.value.errors) == {field}


def test_a_port_in_use_is_a_validation_error_naming_health_port(dd) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        stop_event = threading.Event()
        threading.Timer(20, stop_event.set).start()  # never hangs the test run if it listened
        try:
            with pytest.raises(ValidationError) as info:
                dd.run_worker(handle_signals=False, stop_event=stop_event, health_port=port)
        finally:
            stop_event.set()
    assert set(info.value.errors) == {"health_port"}
    assert f"127.0.0.1:{port}" in str(info.value) and "choose a free port" in str(info.value)


def test_the_cli_says_what_is_wrong_with_a_health_port_in_one_line(deployment) -> None:
    dd = deployment
    common = ["--database-url", dd.runtime.database_url, "--schema", dd.schema]
    out_of_range = dripdrop_cli("worker", *common, "--health-port", "70000", env={})
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        in_use = dripdrop_cli("worker", *common, "--health-port", str(port), env={})
        _, in_use_err = in_use.communicate(timeout=60)
    _, out_of_range_err = out_of_range.communicate(timeout=60)
    assert out_of_range.returncode == 2
    assert out_of_range_err.strip().splitlines() == [
        "error: --health-port: must be from 0 to 65535, not 70000"
    ]
    assert in_use.returncode == 1, in_use_err
    last = in_use_err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "health_port: cannot listen on 127.0.0.1:" in last
    assert "Traceback" not in in_use_err
