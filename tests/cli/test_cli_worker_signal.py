"""`dripdrop worker` delivers, then stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sqlalchemy import text

from dripdrop.config import system_clock


def test_worker_process_delivers_and_stops_on_sigterm(env, database_url):
    dd = env.dd
    dd.create_channel_adapter(name="console", channel="email", provider="console")
    seq = dd.create_sequence(name="Sig", key="sig")
    v = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(
        v.id, name="hello", channel="email", config={"subject": "Hello {{ name }}", "body": "b"}
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dripdrop.cli",
            "worker",
            "--database-url",
            database_url,
            "--schema",
            env.schema,
            "--concurrency",
            "4",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "DRIPDROP_ENCRYPTION_KEY": ""},
    )
    try:
        # The worker uses the real clock; enroll "now" in real time.
        dd.runtime.clock = system_clock
        dd.enroll("sig", {"type": "User", "id": 1}, data={"email": "a@x.io", "name": "Ada"})
        deadline = time.monotonic() + 20
        state = None
        while time.monotonic() < deadline:
            with dd.runtime.engine.begin() as conn:
                state = conn.execute(
                    text(f'SELECT state FROM "{env.schema}".step_executions')
                ).scalar()
            if state == "sent":
                break
            time.sleep(0.1)
        assert state == "sent"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "Hello Ada" in out  # the console provider printed the delivery
    assert "stopped:" in out
