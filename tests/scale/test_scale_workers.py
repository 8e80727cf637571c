"""Many machines on one database: separate `dripdrop worker` OS processes (as on separate
machines: nothing shared but PostgreSQL) share the work, and every execution is delivered exactly
once — a two-step sequence of signed webhooks to a loopback sink process."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

from chaos_support import (
    SEQUENCE_KEY,
    Deliveries,
    SinkProcess,
    all_sent,
    enroll,
    log_tail,
    wait_until,
)
from scale_support import start_sink, start_worker

from dripdrop.config import system_clock
from dripdrop.crypto import generate_key
from dripdrop.testing import TestEnv

WORKERS = 3
SUBSCRIBERS = 600  # two steps each: 1,200 executions


def two_webhook_steps(env: TestEnv, sink: SinkProcess) -> None:
    dd = env.dd
    dd.create_channel_adapter(
        name="sink",
        channel="webhook",
        provider="http",
        credentials={"signing_secret": sink.secret},
        config={"timeout_ms": 10_000},
    )
    seq = dd.create_sequence(name="Scale", key=SEQUENCE_KEY)
    version = dd.create_sequence_version(seq.id, active=True)
    for name in ("first", "second"):
        dd.create_step(
            version.id,
            name=name,
            channel="webhook",
            config={"url": sink.url, "body": {"subscriber": "{{ subscriber_id }}"}},
        )


def sent_by(log: Path) -> int:
    """What a stopped worker says it recorded as sent."""
    found = re.search(r"stopped: RunSummary\(sent=(\d+)", log.read_text(errors="replace"))
    assert found, f"no summary in {log.name}:\n{log_tail(log)}"
    return int(found.group(1))


def test_worker_processes_on_one_database_deliver_every_execution_once(
    database_url: str, tmp_path: Path
) -> None:
    key = generate_key()
    env = TestEnv(database_url, encryption_key=key, allow_private_network=True)
    env.dd.runtime.clock = system_clock  # the workers run on the real clock
    sink = start_sink(tmp_path / "sink", delay=0.01)
    workers: list[tuple[subprocess.Popen[bytes], Path]] = []

    def show() -> str:
        return "\n".join(f"--- {log.name}:\n{log_tail(log)}" for _, log in workers)

    try:
        two_webhook_steps(env, sink)
        for i in range(WORKERS):
            workers.append(start_worker(tmp_path, f"worker-{i}", database_url, env.schema, key, 20))
        for proc, log in workers:  # every worker up before any work exists: each may take a share
            wait_until(lambda log=log: "worker on schema" in log.read_text(), 120, log.name, show)
            assert proc.poll() is None, show()
        enroll(env, SUBSCRIBERS)
        n = 2 * SUBSCRIBERS
        took = wait_until(lambda: all_sent(env, n), 180, f"all {n} sent", show)
        for proc, _ in workers:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in workers:
            proc.wait(timeout=60)
        shares = [sent_by(log) for _, log in workers]
        deliveries = Deliveries.collect(env, sink)
        print(f"\n{WORKERS} workers, shares {shares}; {deliveries.summary()} in {took:.1f} s")
        assert len(deliveries.expected) == n
        deliveries.assert_exactly_once()
        assert sum(shares) == n  # each execution recorded by exactly one worker
        assert all(share > 0 for share in shares), f"a worker took no share: {shares}"
    finally:
        for proc, _ in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        sink.stop()
        env.close()
