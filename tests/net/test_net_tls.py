"""HTTPS through the pinned connection: SNI and certificate checks use the hostname."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer

from dripdrop.errors import ConfigurationError
from dripdrop.net import OutboundPolicy, create_http_client, guarded_request

FakeDNS = Callable[[dict[str, Any]], list[str]]  # the fake_dns fixture (conftest)
POLICY = OutboundPolicy(allowlist=("127.0.0.1/32",))


def _self_signed(hostname: str, directory: Path) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, pem


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[HTTPServer, bytes, list]]:
    """An HTTPS server on 127.0.0.1 whose certificate names only ``hooks.test``."""
    cert, key, pem = _self_signed("hooks.test", tmp_path_factory.mktemp("tls"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    sni_seen: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: sni_seen.append(name)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    try:
        yield server, pem, sni_seen
    finally:
        server.clear()
        server.stop()


def _trusting(pem: bytes) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=pem.decode())


async def test_https_pinned_to_vetted_ip_verifies_hostname(
    tls_server: tuple[HTTPServer, bytes, list], fake_dns: FakeDNS, connects: list
) -> None:
    server, pem, sni_seen = tls_server
    server.clear()
    sni_seen.clear()
    lookups = fake_dns({"hooks.test": ["127.0.0.1"]})
    server.expect_request("/").respond_with_data("secure")
    async with create_http_client(POLICY, verify=_trusting(pem)) as c:
        response = await guarded_request(c, "GET", f"https://hooks.test:{server.port}/")
    assert response.text == "secure"
    assert sni_seen == ["hooks.test"]
    assert lookups.count("hooks.test") == 1
    assert connects == [("127.0.0.1", server.port)]


@pytest.mark.parametrize("host", ["127.0.0.1", "alias.test"])
async def test_https_certificate_mismatch_fails(
    host: str, tls_server: tuple[HTTPServer, bytes, list], fake_dns: FakeDNS
) -> None:
    server, pem, _ = tls_server
    server.clear()
    fake_dns({"alias.test": ["127.0.0.1"]})
    server.expect_request("/").respond_with_data("should not be reached")
    async with create_http_client(POLICY, verify=_trusting(pem)) as c:
        with pytest.raises(httpx2.ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|match"):
            await guarded_request(c, "GET", f"https://{host}:{server.port}/")
    assert server.log == []


async def test_https_untrusted_certificate_fails_with_default_verification(
    tls_server: tuple[HTTPServer, bytes, list], fake_dns: FakeDNS
) -> None:
    server, _, _ = tls_server
    fake_dns({"hooks.test": ["127.0.0.1"]})
    async with create_http_client(POLICY) as c:
        with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await guarded_request(c, "GET", f"https://hooks.test:{server.port}/")


def test_non_verifying_ssl_context_is_refused() -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.raises(ConfigurationError, match="verification"):
        create_http_client(POLICY, verify=context)
