"""Fixtures for the provider tests: a real async HTTP client and a closed local port."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer

from dripdrop.channels import DeliveryContext
from dripdrop.net import OutboundPolicy, create_http_client


@pytest.fixture(params=["plain", "guarded"])
async def ctx(request: pytest.FixtureRequest) -> AsyncIterator[DeliveryContext]:
    """A delivery context: every provider test runs with a plain client and with the worker's
    guarded client (loopback allow-listed, since the fake APIs listen on 127.0.0.1)."""
    if request.param == "plain":
        client = httpx2.AsyncClient(timeout=5.0)
    else:
        client = create_http_client(OutboundPolicy(allowlist=("127.0.0.1/32",), timeout=5.0))
    async with client:
        yield DeliveryContext(http=client)


@pytest.fixture
def base(httpserver: HTTPServer) -> str:
    """The fake provider's root URL, without a trailing slash."""
    return httpserver.url_for("/").rstrip("/")


@pytest.fixture
def closed_base() -> str:
    """A root URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
async def local_ctx() -> AsyncIterator[DeliveryContext]:
    """The worker's context with 127.0.0.1 allow-listed: for providers that make no HTTP request
    through ``ctx.http`` but follow its policy (apprise, redis)."""
    async with create_http_client(OutboundPolicy(allowlist=("127.0.0.1/32",), timeout=5.0)) as c:
        yield DeliveryContext(http=c)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for the name ``redis.test`` only (cert.pem, key.pem): it
    verifies only when TLS checks the hostname, not the IP the socket connected to."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "redis.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("redis.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return folder
