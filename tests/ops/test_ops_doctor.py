"""``dripdrop doctor`` and ``/health``: what each check finds, what it says to fix, the exit
status; never a secret in what they print."""

from __future__ import annotations

import socket
import uuid
from datetime import timedelta

from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dripdrop import DripDrop
from dripdrop.cli import app
from dripdrop.crypto import generate_key
from dripdrop.db.migrate import MIGRATIONS
from dripdrop.ops.doctor import run_checks
from dripdrop.web import create_app

SECRET = "api-key-5d1f0e"
HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()  # the newest packaged migration


def _doctor(dd, *extra: str, key: str | None = None):
    env = {"DRIPDROP_ENCRYPTION_KEY": key} if key else {}
    args = ["doctor", "--database-url", dd.runtime.database_url, "--schema", dd.schema, *extra]
    return CliRunner().invoke(app, args, env=env)


def test_a_healthy_deployment_passes(env) -> None:
    dd = env.dd
    key = dd.runtime._key_source
    dd.create_channel_adapter(
        name="mg",
        channel="email",
        provider="mailgun",
        credentials={"api_key": SECRET, "domain": "mg.example.com"},
    )
    result = _doctor(dd, key=key)
    assert result.exit_code == 0, result.output
    for line in (
        "✓ database",
        f"✓ migrations: at {HEAD} (latest)",
        "✓ key ring: all 1 stored secret(s) decrypt",
        "✓ schedule lag",
    ):
        assert line in result.output
    assert SECRET not in result.output


def test_secrets_that_do_not_decrypt_fail_with_what_to_do(env) -> None:
    dd = env.dd
    adapter = dd.create_channel_adapter(
        name="mg",
        channel="email",
        provider="mailgun",
        credentials={"api_key": SECRET, "domain": "mg.example.com"},
    )
    result = _doctor(dd, key=generate_key())  # not the key they were stored with
    assert result.exit_code == 1
    assert (
        f"✗ key ring: 1 of 1 stored secret(s) do not decrypt: channel_adapters {adapter.id}"
        in result.output
    )
    assert "fix: put the key they were stored with back in DRIPDROP_ENCRYPTION_KEY" in result.output
    assert SECRET not in result.output


def test_an_old_key_in_the_ring_is_a_warning(env) -> None:
    dd = env.dd
    old = dd.runtime._key_source
    dd.create_channel_adapter(
        name="mg",
        channel="email",
        provider="mailgun",
        credentials={"api_key": SECRET, "domain": "mg.example.com"},
    )
    result = _doctor(dd, key=f"{generate_key()},{old}")
    assert result.exit_code == 0, result.output
    assert "! key ring: all 1 secret(s) decrypt; 1 under an older key" in result.output
    assert "fix: run `dripdrop rotate-key`" in result.output


def test_a_schema_not_set_up_and_an_unreachable_database(database_url) -> None:
    blank = DripDrop(database_url, schema=f"dd_blank_{uuid.uuid4().hex[:8]}")
    try:
        checks = run_checks(blank.runtime)
        assert [(c.name, c.status) for c in checks] == [("database", "ok"), ("migrations", "fail")]
        assert checks[-1].fix == "run `dripdrop setup`"
    finally:
        blank.close()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = DripDrop(f"postgresql://postgres:pw-7c1@127.0.0.1:{port}/x", schema="dripdrop")
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["doctor", "--database-url", down.runtime.database_url])
        assert result.exit_code == 1
        assert "✗ database: cannot connect" in result.output and "pw-7c1" not in result.output
    finally:
        down.close()


def test_schedule_lag_and_adapter_reachability(env) -> None:
    dd = env.dd
    seq = dd.create_sequence(name="S", key="s")
    version = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(version.id, name="a", channel="email", config={"subject": "x", "body": "y"})
    dd.enroll(sequence_key="s", subscriber={"type": "User", "id": 1}, data={"email": "a@x.io"})
    env.clock.advance(timedelta(minutes=10))
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))
        up, down = listening.getsockname()[1], closed.getsockname()[1]
        for name, port in (("up", up), ("down", down)):
            dd.create_channel_adapter(
                name=name,
                channel="webhook",
                provider="http",
                config={"base_url": f"http://127.0.0.1:{port}/hooks"},
            )
        checks = {c.name: c for c in run_checks(dd.runtime, check_adapters=True)}
    lag = checks["schedule lag"]
    assert lag.status == "warn" and "1 due now; the oldest has waited 600 s" in lag.detail
    assert "dripdrop worker" in lag.fix
    assert checks["adapter 'up' (http)"].status == "ok"
    assert checks["adapter 'down' (http)"].status == "fail"
    assert f"127.0.0.1:{down}" in checks["adapter 'down' (http)"].detail


def test_health_reports_the_database_and_the_lag(env) -> None:
    dd = env.dd
    with TestClient(create_app(dd)) as client:
        assert client.get("/health").json() == {
            "status": "ok",
            "database": "ok",
            "lag_seconds": 0.0,
            "lag": "ok",
        }
        seq = dd.create_sequence(name="X", key="x")
        version = dd.create_sequence_version(seq.id, active=True)
        dd.create_step(version.id, name="a", channel="email", config={"subject": "x", "body": "y"})
        dd.enroll(sequence_key="x", subscriber={"type": "User", "id": 1}, data={"email": "a@x.io"})
        env.clock.advance(timedelta(minutes=5))
        body = client.get("/health").json()
        assert body["lag"] == "behind" and body["lag_seconds"] == 300.0
    # The database gone: 503, still no key needed.
    broken = DripDrop("postgresql://nobody:pw@127.0.0.1:1/x", schema="dripdrop")
    try:
        with TestClient(create_app(broken)) as client:
            answer = client.get("/health")
        assert answer.status_code == 503
        assert answer.json() == {"status": "degraded", "database": "unreachable"}
    finally:
        broken.close()
