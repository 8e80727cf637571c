"""A real aiosmtpd server on 127.0.0.1 for the SMTP provider tests."""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Received:
    """One message the test server accepted."""

    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps messages and can answer with a chosen failure."""

    messages: list[Received] = field(default_factory=list)
    rcpt_reply: str | None = None
    data_reply: str | None = None
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        # Mail clients see local line endings; compare texts the same way.
        raw = envelope.original_content.replace(b"\r\n", b"\n")
        parsed = email.message_from_bytes(raw, policy=policy.default)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 2.0.0 queued as abc123"


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A local port with no listener (connections are refused)."""
    return free_port()


def _authenticator(recorder: Recorder) -> Callable[..., AuthResult]:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> AuthResult:
        if not isinstance(auth, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth.login.decode(), auth.password.decode()
        recorder.logins.append((login, password))
        ok = (login, password) == ("mailer", "s3cret")
        # handled=False lets aiosmtpd send its own 535 reply on failure.
        return AuthResult(success=ok, handled=ok)

    return check


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a fresh self-signed certificate for 127.0.0.1 (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return folder


@pytest.fixture(scope="session")
def tls_context(tls_files: Path) -> ssl.SSLContext:
    """A server context with the self-signed certificate of ``tls_files``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls_files / "cert.pem", tls_files / "key.pem")
    return ctx


@pytest.fixture
def trusted_tls(tls_files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust the test certificate the way an operator trusts a private relay's CA: through the
    default trust store (OpenSSL reads SSL_CERT_FILE), since verification cannot be turned off."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files / "cert.pem"))


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., tuple[Recorder, int]]]:
    """Start servers on demand: ``start(auth=False, starttls=None, implicit_tls=None)``."""
    started: list[Controller] = []

    def start(
        *,
        auth: bool = False,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        **smtp_kwargs: Any,
    ) -> tuple[Recorder, int]:
        recorder = Recorder()
        port = free_port()
        kwargs: dict[str, Any] = dict(smtp_kwargs)
        if auth:
            kwargs.update(authenticator=_authenticator(recorder), auth_required=True)
            kwargs.setdefault("auth_require_tls", False)
        if starttls is not None:
            kwargs.update(tls_context=starttls, require_starttls=True)
        controller = Controller(
            recorder, hostname="127.0.0.1", port=port, ssl_context=implicit_tls, **kwargs
        )
        controller.start()
        started.append(controller)
        return recorder, port

    yield start
    for controller in started:
        controller.stop()
