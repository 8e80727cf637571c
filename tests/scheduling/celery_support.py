"""Helpers of the Celery tests: brokers on this machine, real ``celery worker`` processes, and a
DripDrop whose dispatcher hands work to them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery
from chaos_support import SEQUENCE_KEY, SinkProcess, log_tail

from dripdrop.config import system_clock
from dripdrop.scheduling.celery import CeleryScheduler
from dripdrop.testing import TestEnv

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"


def reachable(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def redis_url() -> str:
    """A database number of the machine's Redis for this run (queues are named per test too)."""
    return f"redis://127.0.0.1:6379/{1 + os.getpid() % 15}"


BROKERS = {
    "redis": (6379, redis_url),
    "rabbitmq": (5672, lambda: "amqp://guest:guest@127.0.0.1:5672//"),
}


def purge(app: Celery, queue: str) -> int:
    """Drop every message waiting in ``queue`` (a lost message, as after a broker failure)."""
    with app.connection_for_write() as conn:
        return int(conn.default_channel.queue_purge(queue) or 0)


@dataclass
class CeleryWorkers:
    """Real ``celery -A dripdrop.scheduling.celery worker`` processes for one test."""

    directory: Path
    environ: dict[str, str]
    queue: str
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def start(self, concurrency: int = 4) -> subprocess.Popen[bytes]:
        name = f"w{len(self.started) + 1}-{self.queue}"
        log_path = self.directory / f"{name}.log"
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "dripdrop.scheduling.celery",
            "worker",
            "-Q",
            self.queue,
            "-c",
            str(concurrency),
            "-P",
            "prefork",
            "-n",
            f"{name}@%h",
            "-l",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ]
        self.directory.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            # A session of its own: a kill reaches the pool processes too, as a machine loss.
            proc = subprocess.Popen(
                args,
                env=self.environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(proc)
        self.logs.append(log_path)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and its pool processes at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.started:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def diagnostics(self) -> str:
        return "\n".join(f"--- {p.name}:\n{log_tail(p, 30)}" for p in self.logs)


@dataclass
class CeleryRig:
    """A DripDrop on a fresh schema (real clock) with a CeleryScheduler; its dispatcher runs on a
    thread; ``workers`` start Celery worker processes on the same broker and queue."""

    env: TestEnv
    app: Celery
    queue: str
    workers: CeleryWorkers
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def dispatch(self, redispatch_after: float) -> None:
        self.thread = threading.Thread(
            target=self.env.dd.run_dispatcher,
            args=(self.stop,),
            kwargs={"redispatch_after": redispatch_after, "poll_interval": 0.2},
            daemon=True,
        )
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(15)
        self.workers.stop_all()
        self.env.close()


@contextlib.contextmanager
def celery_rig(
    database_url: str, broker: str, directory: Path, *, lease: float, hook_seconds: float = 0.0
) -> Iterator[CeleryRig]:
    from dripdrop.crypto import generate_key

    key = generate_key()
    queue = f"dd-test-{uuid.uuid4().hex[:10]}"
    app = Celery("dripdrop-tests", broker=broker)
    app.conf.broker_connection_retry_on_startup = True
    scheduler = CeleryScheduler(app, queue=queue, lease_seconds=lease)
    env = TestEnv(database_url, encryption_key=key, allow_private_network=True, scheduler=scheduler)
    env.dd.runtime.clock = system_clock  # the Celery workers run on the real clock
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(SRC), os.environ.get("PYTHONPATH", "")]),
        "PYTHONUNBUFFERED": "1",
        "DRIPDROP_DATABASE_URL": database_url,
        "DRIPDROP_SCHEMA_NAME": env.schema,
        "DRIPDROP_ENCRYPTION_KEY": key,
        "DRIPDROP_ALLOW_PRIVATE_NETWORK": "true",
        "DRIPDROP_CELERY_BROKER_URL": broker,
        "DRIPDROP_CELERY_QUEUE": queue,
        "DRIPDROP_CELERY_LEASE_SECONDS": str(lease),
        # Redis: a killed worker's unacknowledged messages come back after this (they then find
        # their executions claimed or sent).
        "DRIPDROP_CELERY_VISIBILITY_TIMEOUT": "5",
        "SLOW_HOOK_SECONDS": str(hook_seconds),
    }
    rig = CeleryRig(env, app, queue, CeleryWorkers(directory, environ, queue))
    try:
        yield rig
    finally:
        rig.close()
        with contextlib.suppress(Exception):
            purge(app, queue)


def webhook_sequence(env: TestEnv, sink: SinkProcess, *, slow_hook: bool = False) -> Any:
    """Sequence ``chaos``: one signed webhook to the sink, after the ``slow`` hook when asked."""
    dd = env.dd
    dd.create_channel_adapter(
        name="sink",
        channel="webhook",
        provider="http",
        credentials={"signing_secret": sink.secret},
        config={"timeout_ms": 10_000},
    )
    seq = dd.create_sequence(
        name="Chaos", key=SEQUENCE_KEY, hook_module="slow_hooks" if slow_hook else None
    )
    version = dd.create_sequence_version(seq.id, active=True)
    step = dd.create_step(
        version.id,
        name="notify",
        channel="webhook",
        config={"url": sink.url, "body": {"subscriber": "{{ subscriber_id }}"}},
    )
    if slow_hook:
        dd.create_condition(
            step.id, condition_type="hook", hook_function="slow", operator="eq", expected_value="1"
        )
    return step
