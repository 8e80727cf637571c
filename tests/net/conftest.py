"""Fixtures for the outbound guard: local servers and a recorder of every socket connect.

The recorder is autouse and refuses (raises) any connect to a non-loopback address, so a
bug in the guard can never send test traffic beyond this machine.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator

import pytest
from pytest_httpserver import HTTPServer

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address: object) -> bool:
    if not isinstance(address, tuple):
        return False  # unix sockets etc.
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


@pytest.fixture(autouse=True)
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every (host, port) a socket tried to connect to during the test."""
    seen: list[tuple[str, int]] = []

    def record(sock: socket.socket, address: object, real: object) -> object:
        seen.append((str(address[0]), int(address[1])) if isinstance(address, tuple) else address)
        if not _is_loopback(address):
            raise OSError(f"test safety net: refused non-loopback connect to {address!r}")
        return real(sock, address)  # type: ignore[operator]

    monkeypatch.setattr(socket.socket, "connect", lambda s, a: record(s, a, _real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda s, a: record(s, a, _real_connect_ex))
    return seen


# Answers are a fixed list, or a callable giving a new answer per lookup (rebinding).
FakeDNS = Callable[[dict[str, list[str] | Callable[[], list[str]]]], list[str]]


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    """Install fake answers for some names; returns the list of every name looked up."""
    real = socket.getaddrinfo

    def install(answers: dict[str, list[str] | Callable[[], list[str]]]) -> list[str]:
        lookups: list[str] = []

        def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
            name = host.decode() if isinstance(host, bytes) else str(host)
            lookups.append(name)
            if name not in answers:
                return real(host, port, family, type, proto, flags)
            answer = answers[name]
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0))
                if ":" in ip
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in (answer() if callable(answer) else answer)
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return lookups

    return install


def _server(host: str) -> Iterator[HTTPServer]:
    server = HTTPServer(host=host, port=0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


@pytest.fixture(scope="session")
def _server4() -> Iterator[HTTPServer]:
    yield from _server("127.0.0.1")


@pytest.fixture(scope="session")
def _server6() -> Iterator[HTTPServer]:
    yield from _server("::1")


@pytest.fixture
def server4(_server4: HTTPServer) -> Iterator[HTTPServer]:
    """An HTTP server on 127.0.0.1, emptied before each test."""
    _server4.clear()
    yield _server4
    _server4.clear()


@pytest.fixture
def server6(_server6: HTTPServer) -> Iterator[HTTPServer]:
    """An HTTP server on [::1], emptied before each test."""
    _server6.clear()
    yield _server6
    _server6.clear()
