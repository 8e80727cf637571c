"""The dripdrop CLI: setup, gen-key, rotate-key, demo, enroll (CSV), simulate, status."""

from __future__ import annotations

import base64
import time
import uuid

from sqlalchemy import text
from typer.testing import CliRunner

from dripdrop import DripDrop
from dripdrop.cli import app
from dripdrop.crypto import KeyRing, generate_key

runner = CliRunner()


def _drop(url: str, schema: str) -> None:
    dd = DripDrop(url, schema=schema)
    with dd.runtime.engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    dd.close()


def test_gen_key_prints_a_32_byte_key():
    result = runner.invoke(app, ["gen-key"])
    assert result.exit_code == 0
    assert len(base64.b64decode(result.output.strip())) == 32


def test_setup_is_idempotent(database_url):
    schema = f"cli_{uuid.uuid4().hex[:8]}"
    try:
        for _ in range(2):
            result = runner.invoke(
                app, ["setup", "--database-url", database_url, "--schema", schema]
            )
            assert result.exit_code == 0, result.output
            assert "up to date" in result.output
    finally:
        _drop(database_url, schema)


def test_rotate_key_reencrypts_and_resumes(database_url):
    schema = f"cli_{uuid.uuid4().hex[:8]}"
    old, new = generate_key(), generate_key()
    dd = DripDrop(database_url, schema=schema, encryption_key=old)
    dd.setup()
    try:
        for i in range(3):
            dd.create_channel_adapter(
                name=f"mg{i}",
                channel="email",
                provider="mailgun",
                credentials={"api_key": f"key-{i}"},
                config={"domain": "mg.example.com"},
            )
        env = {"DRIPDROP_ENCRYPTION_KEY": f"{new},{old}"}
        args = [
            "rotate-key",
            "--database-url",
            database_url,
            "--schema",
            schema,
            "--batch-size",
            "2",
        ]
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
        assert "re-encrypted 3 row(s) of channel_adapters" in result.output
        again = runner.invoke(app, args, env=env)
        assert "re-encrypted 0 row(s) of channel_adapters" in again.output
        # Only the new key is needed now.
        fresh = DripDrop(database_url, schema=schema, encryption_key=new)
        assert sorted(
            a.credentials.reveal()["api_key"] for a in fresh.list_channel_adapters("email")
        ) == ["key-0", "key-1", "key-2"]
        with fresh.runtime.engine.begin() as conn:
            blobs = (
                conn.execute(text(f'SELECT credentials FROM "{schema}".channel_adapters'))
                .scalars()
                .all()
            )
        ring = KeyRing.from_env_value(new)
        assert not any(ring.needs_rotation(bytes(b)) for b in blobs)
        fresh.close()
    finally:
        dd.close()
        _drop(database_url, schema)


def test_demo_delivers_the_onboarding_sequence(database_url):
    schema = f"cli_demo_{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    try:
        result = runner.invoke(app, ["demo", "--database-url", database_url, "--schema", schema])
        assert result.exit_code == 0, result.output
        assert time.monotonic() - started < 30
        out = result.output
        assert "Welcome Ada!" in out and "Your weekly summary" in out
        assert "activation_sms" in out and "skipped" in out
        assert "'sent': 12" in out and "'skipped': 3" in out
    finally:
        _drop(database_url, schema)


def test_enroll_csv_simulate_and_status(database_url, tmp_path):
    schema = f"cli_{uuid.uuid4().hex[:8]}"
    dd = DripDrop(database_url, schema=schema)
    dd.setup()
    try:
        dd.create_channel_adapter(name="mem", channel="email", provider="memory")
        seq = dd.create_sequence(name="CSV", key="csv")
        v = dd.create_sequence_version(seq.id, active=True)
        dd.create_step(
            v.id, name="hi", channel="email", config={"subject": "Hi {{ name }}", "body": "b"}
        )
        dd.create_step(
            v.id,
            name="paid",
            channel="email",
            timing={"type": "event", "trigger_event": "paid"},
            config={"subject": "Thanks", "body": "b"},
        )
        csv_file = tmp_path / "people.csv"
        csv_file.write_text("id,name,email\n1,Ada,ada@x.io\n2,Bob,bob@x.io\n")
        common = ["--database-url", database_url, "--schema", schema]
        result = runner.invoke(app, ["enroll", "csv", str(csv_file), *common])
        assert result.exit_code == 0, result.output
        assert "enrolled 2\n" in result.output
        assert dd.get_enrollment("csv", "User", "2").data == {"name": "Bob", "email": "bob@x.io"}
        result = runner.invoke(app, ["status", *common])
        assert "due now: 2" in " ".join(result.output.split())
        result = runner.invoke(
            app,
            [
                "simulate",
                "csv",
                "--data",
                '{"email": "z@x.io"}',
                "--event",
                "2d:paid",
                "--until",
                "5d",
                *common,
            ],
        )
        assert result.exit_code == 0, result.output
        assert "hi (email)" in result.output and "paid (email)" in result.output
        assert len(dd.list_active_enrollments("csv")) == 2  # the simulation left nothing
    finally:
        dd.close()
        _drop(database_url, schema)


def test_check_version_lists_problems_and_exits_1(database_url):
    schema = f"cli_{uuid.uuid4().hex[:8]}"
    dd = DripDrop(database_url, schema=schema)
    dd.setup()
    try:
        seq = dd.create_sequence(name="Ready", key="ready")
        version = dd.create_sequence_version(seq.id, active=True)
        dd.create_step(version.id, name="Inbox", channel="pubsub", config={"topic": "t"})
        args = ["--database-url", database_url, "--schema", schema]
        for target in ([], ["ready"], [str(version.id)]):
            result = runner.invoke(app, ["check-version", *target, *args])
            assert result.exit_code == 1, result.output
            assert "✗" in result.output
            assert "step 'inbox': channel: no active pubsub adapter for global" in result.output
        dd.create_channel_adapter(name="Inbox", channel="pubsub", provider="postgres")
        result = runner.invoke(app, ["check-version", *args])
        assert result.exit_code == 0, result.output
        assert result.output.strip() == "✓ ready v1"
        result = runner.invoke(app, ["check-version", "nope", *args])
        assert result.exit_code == 1 and "nope" in result.output
    finally:
        _drop(database_url, schema)
