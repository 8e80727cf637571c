"""`dripdrop web` (uvicorn serving create_app) and `dripdrop api-key create|list|revoke`."""

from __future__ import annotations

import builtins
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx2
import pytest
from typer.testing import CliRunner

from dripdrop.cli import app

runner = CliRunner()


def _args(env: Any) -> list[str]:
    return ["--database-url", os.environ["DRIPDROP_TEST_DATABASE_URL"], "--schema", env.schema]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_api_key_create_prints_the_token_once_with_a_warning(env) -> None:
    result = runner.invoke(
        app, ["api-key", "create", "ci", "--scope", "read", "--scope", "write", *_args(env)]
    )
    assert result.exit_code == 0, result.output
    (token,) = [line for line in result.stdout.splitlines() if line.startswith("dd_")]
    assert "will not be shown again" in result.stderr
    assert "scopes read, write" in result.stdout
    (key,) = env.dd.list_api_keys()
    assert key.name == "ci" and key.scopes == ["read", "write"] and key.tenant_key is None
    assert token.startswith(f"dd_{key.prefix}_")
    # The token works, and listing never shows it again.
    from fastapi.testclient import TestClient

    from dripdrop.web import create_app

    with TestClient(create_app(env.dd)) as client:
        ok = client.get("/api/v1/sequences", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    listed = runner.invoke(app, ["api-key", "list", *_args(env)])
    assert listed.exit_code == 0 and str(key.id) in listed.stdout and "ci" in listed.stdout
    assert token not in listed.output and "read,write" in listed.stdout


def test_api_key_create_binds_a_tenant_and_defaults_to_read(env) -> None:
    result = runner.invoke(app, ["api-key", "create", "acme-ro", "--tenant", "acme", *_args(env)])
    assert result.exit_code == 0, result.output
    (key,) = env.dd.list_api_keys()
    assert key.scopes == ["read"] and key.tenant_key == "acme"
    assert "tenant acme" in result.stdout


def test_api_key_create_refuses_an_unknown_scope_in_one_line(env) -> None:
    result = runner.invoke(app, ["api-key", "create", "x", "--scope", "root", *_args(env)])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "scope" in result.stderr
    assert "dd_" not in result.stdout and env.dd.list_api_keys() == []


def test_api_key_revoke_and_list(env) -> None:
    keep = env.dd.create_api_key("keep", scopes=["read"])
    gone = env.dd.create_api_key("gone", scopes=["admin"])
    result = runner.invoke(app, ["api-key", "revoke", str(gone.id), *_args(env)])
    assert result.exit_code == 0, result.output
    assert "revoked" in result.stdout and str(gone.id) in result.stdout
    listed = runner.invoke(app, ["api-key", "list", *_args(env)]).stdout
    assert str(keep.id) in listed and str(gone.id) not in listed
    every = runner.invoke(app, ["api-key", "list", "--all", *_args(env)]).stdout
    assert str(gone.id) in every and "revoked=" in every
    # Unknown and malformed ids: one line, status 1.
    for bad in ("not-an-id", "00000000-0000-0000-0000-000000000000"):
        result = runner.invoke(app, ["api-key", "revoke", bad, *_args(env)])
        assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output


def test_api_key_list_without_keys(env) -> None:
    result = runner.invoke(app, ["api-key", "list", *_args(env)])
    assert result.exit_code == 0 and "no API keys" in result.stdout


def test_api_key_without_a_subcommand_shows_help() -> None:
    result = runner.invoke(app, ["api-key"])
    assert "create" in result.output and "revoke" in result.output


def test_web_without_the_web_extra_fails_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_uvicorn(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "uvicorn" or name.startswith("uvicorn."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_uvicorn)
    result = runner.invoke(app, ["web", "--port", "1"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "dripdrop-engine[web]" in result.stderr


def test_web_serves_health_and_the_api_then_stops_on_sigterm(env) -> None:
    key = env.dd.create_api_key("web", scopes=["read"])
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dripdrop.cli", "web", "--port", str(port), *_args(env)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "DRIPDROP_ENCRYPTION_KEY": ""},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx2.get(f"{base}/health", timeout=2)
                break
            except httpx2.TransportError:
                time.sleep(0.1)
        assert health is not None, proc.communicate(timeout=10)[0] if proc.poll() else "no answer"
        assert health.status_code == 200 and health.json()["status"] == "ok"
        listed = httpx2.get(
            f"{base}/api/v1/sequences", headers={"Authorization": f"Bearer {key.secret}"}
        )
        assert listed.status_code == 200 and listed.json() == {"items": [], "next_cursor": None}
        assert httpx2.get(f"{base}/api/v1/sequences").status_code == 401
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}" in out
