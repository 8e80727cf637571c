"""Helpers of the chaos tests: the sink and worker OS processes, a private PostgreSQL server,
deadlines, and the checks of what reached the sink against what the database says."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

from dripdrop.testing import TestEnv

HERE = Path(__file__).parent
SEQUENCE_KEY = "chaos"

# A scheduled row whose lease has not run out is in flight (records show it as "sending").
LEASED = "state = 'scheduled' AND locked_until > clock_timestamp()"


class Deadline(AssertionError):
    """A wait ran out of time."""


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    diagnostics: Callable[[], str] = lambda: "",
    poll: float = 0.1,
) -> float:
    """Poll ``condition`` until it holds; returns the seconds it took. Raises Deadline with
    ``what`` and the diagnostics (worker logs…) when ``timeout`` passes first."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise Deadline(f"after {timeout:.0f} s still waiting for: {what}\n{diagnostics()}")
        time.sleep(poll)
    return time.monotonic() - start


def new_signing_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(content[-lines:])


# --- the sink -------------------------------------------------------------------------------


class SinkProcess:
    """A running sink.py; ``received()`` reads its log of requests."""

    def __init__(
        self, directory: Path, delay: float, slow_every: int = 0, slow_delay: float = 0.0
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.secret = new_signing_secret()
        self.log_path = directory / "requests.jsonl"
        self.out_path = directory / "sink.out"
        port_file = directory / "port"
        with self.out_path.open("w") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "sink.py"),
                    str(port_file),
                    str(self.log_path),
                    "--delay",
                    str(delay),
                    "--slow-every",
                    str(slow_every),
                    "--slow-delay",
                    str(slow_delay),
                ],
                env={**os.environ, "SINK_SECRET": self.secret},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(
                lambda: port_file.exists() or self.proc.poll() is not None,
                15,
                "the sink to listen",
                self.diagnostics,
                poll=0.02,
            )
            if self.proc.poll() is not None:
                raise AssertionError(f"the sink exited:\n{self.diagnostics()}")
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{int(port_file.read_text())}/hook"

    def received(self) -> list[dict[str, Any]]:
        """Every request logged so far (a line being written is left for the next read)."""
        records = []
        try:
            lines = self.log_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def count(self) -> int:
        return len(self.received())

    def diagnostics(self) -> str:
        return f"--- sink output:\n{log_tail(self.out_path)}"

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; nothing when it already exited."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# --- worker processes -----------------------------------------------------------------------


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log_path: Path
    name: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class WorkerPool:
    """Starts real ``dripdrop worker`` processes and makes sure none outlives the test."""

    directory: Path
    started: list[Worker] = field(default_factory=list)

    def start(
        self,
        env: TestEnv,
        encryption_key: str,
        *,
        concurrency: int = 10,
        lease: float | None = None,
        grace: float | None = None,
    ) -> Worker:
        name = f"worker-{len(self.started) + 1}"
        log_path = self.directory / f"{name}.log"
        args = [
            sys.executable,
            "-m",
            "dripdrop.cli",
            "worker",
            "--database-url",
            env.dd.runtime.database_url,
            "--schema",
            env.schema,
            "--concurrency",
            str(concurrency),
        ]
        if lease is not None:
            args += ["--lease", str(lease)]
        if grace is not None:
            args += ["--grace", str(grace)]
        environ = {
            **os.environ,
            "DRIPDROP_ENCRYPTION_KEY": encryption_key,
            # The sink is on loopback, which the outbound guard refuses by default.
            "DRIPDROP_ALLOW_PRIVATE_NETWORK": "true",
            "PYTHONUNBUFFERED": "1",  # a SIGKILLed worker's log is complete up to the kill
            "COLUMNS": "200",
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            proc = subprocess.Popen(args, env=environ, stdout=log, stderr=subprocess.STDOUT)
        worker = Worker(proc, log_path, name)
        self.started.append(worker)
        return worker

    def alive(self) -> list[Worker]:
        return [w for w in self.started if w.alive()]

    def kill(self, worker: Worker) -> None:
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(timeout=10)

    def stop_all(self) -> None:
        for worker in self.started:
            if worker.alive():
                worker.proc.kill()
        for worker in self.started:
            worker.proc.wait(timeout=10)

    def diagnostics(self, lines: int = 25) -> str:
        parts = []
        for w in self.started:
            rc = w.proc.poll()
            status = "running" if rc is None else f"exit {rc}"
            parts.append(f"--- {w.name} (pid {w.pid}, {status}):\n{log_tail(w.log_path, lines)}")
        return "\n".join(parts)


# --- the sequence and the database ----------------------------------------------------------


def webhook_sequence(env: TestEnv, sink: SinkProcess) -> None:
    """Sequence ``chaos``: one webhook step POSTing the subscriber id, signed, to the sink."""
    dd = env.dd
    dd.create_channel_adapter(
        name="sink",
        channel="webhook",
        provider="http",
        credentials={"signing_secret": sink.secret},
        config={"timeout_ms": 10_000},
    )
    seq = dd.create_sequence(name="Chaos", key=SEQUENCE_KEY)
    version = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(
        version.id,
        name="notify",
        channel="webhook",
        config={"url": sink.url, "body": {"subscriber": "{{ subscriber_id }}"}},
    )


def enroll(env: TestEnv, n: int) -> None:
    """``n`` subscribers, due now on the real clock (the workers' clock)."""
    items = ({"subscriber": {"type": "User", "id": str(i)}, "data": {}} for i in range(n))
    assert env.dd.enroll_many(SEQUENCE_KEY, items) == n


def query(env: TestEnv, statement: str) -> list[Any]:
    """Rows of ``statement`` in the test's schema (``{s}`` is the quoted schema name)."""
    with env.dd.runtime.engine.begin() as conn:
        return conn.execute(text(statement.format(s=f'"{env.schema}"'))).all()


def execution_states(env: TestEnv) -> Counter[str]:
    """Executions by state, "leased" for scheduled rows under a live lease."""
    rows = query(
        env,
        f"SELECT CASE WHEN {LEASED} THEN 'leased' ELSE state END, count(*) "
        "FROM {s}.step_executions GROUP BY 1",
    )
    return Counter({state: n for state, n in rows})


def all_sent(env: TestEnv, n: int) -> bool:
    return execution_states(env) == Counter({"sent": n})


def leased_count(env: TestEnv) -> int:
    return query(env, f"SELECT count(*) FROM {{s}}.step_executions WHERE {LEASED}")[0][0]


@dataclass
class Deliveries:
    """What reached the sink, against the executions in the database."""

    expected: dict[str, str]  # idempotency key -> subscriber id
    received: list[dict[str, Any]]

    @classmethod
    def collect(cls, env: TestEnv, sink: SinkProcess) -> Deliveries:
        rows = query(
            env,
            "SELECT x.idempotency_key, e.subscriber_id FROM {s}.step_executions AS x "
            "JOIN {s}.enrollments AS e ON e.id = x.enrollment_id",
        )
        return cls({key: str(sub) for key, sub in rows}, sink.received())

    @property
    def counts(self) -> Counter[str]:
        return Counter(r["webhook_id"] for r in self.received)

    @property
    def lost(self) -> set[str]:
        return set(self.expected) - set(self.counts)

    @property
    def unknown(self) -> set[str]:
        return set(self.counts) - set(self.expected)

    @property
    def invalid(self) -> list[dict[str, Any]]:
        return [r for r in self.received if not r["valid"]]

    @property
    def mismatched(self) -> list[dict[str, Any]]:
        """Requests whose webhook-id is not the key of the execution of their subscriber: a
        redelivery must carry the original execution's key, or receivers cannot dedupe."""
        return [
            r
            for r in self.received
            if r["webhook_id"] in self.expected
            and (r["body"] or {}).get("subscriber") != self.expected[r["webhook_id"]]
        ]

    @property
    def duplicates(self) -> int:
        return len(self.received) - len(self.counts)

    def summary(self) -> str:
        return (
            f"{len(self.expected)} executions, {len(self.received)} requests, "
            f"{len(self.lost)} lost, {self.duplicates} duplicates, {len(self.unknown)} unknown "
            f"ids, {len(self.invalid)} bad signatures, {len(self.mismatched)} mismatched ids"
        )

    def assert_at_least_once(self) -> None:
        """Nothing lost, nothing forged or misattributed; duplicates allowed (same id)."""
        assert self.received, "the sink received nothing"
        assert not self.invalid, f"bad signatures: {self.invalid[:3]} ({self.summary()})"
        assert not self.unknown, f"ids of no execution: {sorted(self.unknown)[:5]}"
        assert not self.mismatched, f"redelivered under another id: {self.mismatched[:3]}"
        assert not self.lost, f"{len(self.lost)} never delivered ({self.summary()})"
        assert set(self.counts) == set(self.expected)

    def assert_exactly_once(self) -> None:
        self.assert_at_least_once()
        twice = {k: n for k, n in self.counts.items() if n > 1}
        assert not twice, f"delivered more than once: {len(twice)} ids ({self.summary()})"


# --- a private PostgreSQL server ------------------------------------------------------------

PG_USER = "dripdrop-pg"  # the OS user the server runs as when the tests run as root
PG_SUPERUSER = "dripdrop"  # the database superuser (trust authentication)


def pg_binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    if not candidates:
        raise FileNotFoundError(f"PostgreSQL's {name} is not installed")
    return str(candidates[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_pg_user() -> None:
    """initdb refuses to run as root: a dedicated system user runs the server."""
    if subprocess.run(["id", PG_USER], capture_output=True).returncode != 0:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PG_USER,
            ],
            check=True,
            capture_output=True,
        )


def make_traversable(path: Path) -> None:
    """Let other users pass through ``path`` and its parents (pytest makes them 0700)."""
    for p in (path, *path.parents):
        mode = p.stat().st_mode
        if not mode & 0o001:
            p.chmod(mode | 0o001)


class PgInstance:
    """A throwaway PostgreSQL server on 127.0.0.1 (never the one the other tests use):
    initialised here, running after ``start()``."""

    def __init__(self, base: Path) -> None:
        self.as_root = os.geteuid() == 0
        self.home = base / "pg"
        self.data = self.home / "data"
        self.log_path = self.home / "server.log"
        self.port = free_port()
        self.home.mkdir(parents=True)
        if self.as_root:
            ensure_pg_user()
            make_traversable(base)
            shutil.chown(self.home, PG_USER, PG_USER)
        self.run(
            pg_binary("initdb"),
            "-D",
            str(self.data),
            "-U",
            PG_SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.data}'\nmax_connections = 100\n"
            )
        self.url = f"postgresql://{PG_SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self.pg_ctl("start")

    def run(self, *args: str) -> None:
        command = ["runuser", "-u", PG_USER, "--", *args] if self.as_root else list(args)
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.home, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def pg_ctl(self, action: str, *options: str) -> None:
        pg_ctl = pg_binary("pg_ctl")
        self.run(pg_ctl, action, "-D", str(self.data), "-l", str(self.log_path), "-w", *options)
        if action != "stop":
            self.wait_ready()

    def wait_ready(self, timeout: float = 20) -> None:
        def accepts() -> bool:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
            except psycopg.OperationalError:
                return False
            return True

        wait_until(accepts, timeout, "the private PostgreSQL to accept connections", self.tail)

    def restart(self) -> None:
        """A fast restart: sessions are terminated, committed work survives."""
        self.pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        """Immediate shutdown; the server is killed outright if pg_ctl cannot stop it."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            self.run(pg_binary("pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-w")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            warnings.warn(f"pg_ctl stop failed, killing the server: {exc}", stacklevel=2)
            with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)

    def tail(self) -> str:
        return f"--- postgres log:\n{log_tail(self.log_path)}"


# --- putting it together --------------------------------------------------------------------


def diagnostics(env: TestEnv, workers: WorkerPool, sink: SinkProcess) -> Callable[[], str]:
    """What a failed wait shows: the executions' states, the sink's count, the processes' logs."""

    def show() -> str:
        try:
            states = dict(execution_states(env))
        except Exception as exc:  # the database may be the thing that is down
            states = {"unreadable": repr(exc)}
        return (
            f"executions: {states}; sink received {sink.count()}\n"
            f"{workers.diagnostics()}\n{sink.diagnostics()}"
        )

    return show


def wait_first_delivery(sink: SinkProcess, show: Callable[[], str], timeout: float = 30) -> None:
    wait_until(lambda: sink.count() > 0, timeout, "a first delivery at the sink", show)


def received_after(sink: SinkProcess, moment: float) -> list[float]:
    """Arrival times (time.time()) of the requests that reached the sink after ``moment``."""
    return sorted(r["t"] for r in sink.received() if r["t"] > moment)
