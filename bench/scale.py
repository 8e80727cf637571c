"""Throughput with 1, 2, 4 … worker processes on one database, and where the database becomes
the limit.

Run: ``.venv/bin/python bench/scale.py [--database-url URL] [--workers 1,2,4] [--n 20000]
[--http-n 5000] [--only memory,http]``. The URL defaults to ``DRIPDROP_BENCH_DATABASE_URL``, else
``postgresql://postgres@127.0.0.1:5432/test``; PostgreSQL must run on this machine (its
backends' CPU is read from ``/proc``).

For each worker count it makes a fresh schema (``ddscale_*``, dropped at the end), starts that
many ``dripdrop worker`` OS processes (each its own interpreter and connection pool, as on
separate machines), waits until they listen, enrolls N subscribers in a one-step sequence due now,
and times enroll → every execution ``sent``. Two shapes:

- ``memory``: an email to the in-process ``memory`` provider (``--concurrency 1000``: two lanes
  claiming 500 rows each) — the engine and the database only;
- ``http``: a webhook POSTed to the loopback sink (``bench/sink.py``, its own process;
  ``--concurrency 100``) — real HTTP deliveries.

It prints executions/s, and CPU per execution: the workers' processes, and the PostgreSQL
backends serving them (the backends whose ``application_name`` is the workers', sampled while
the drain runs; background processes such as the WAL writer are not counted). ``pg busy`` is
those backends' CPU seconds per wall second: when it nears the machine's cores the database is
the limit, and more workers cannot help.

The machine may be shared (other processes compete for the cores): run it twice, late, and
read the figures as noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from sink import Sink  # noqa: E402

from dripdrop import DripDrop  # noqa: E402
from dripdrop.crypto import generate_key  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
LOGS = Path(tempfile.gettempdir()) / "dripdrop-bench-scale"  # the workers' output
# The installed `dripdrop` command beside this interpreter, as an operator runs it.
_SCRIPT = Path(sys.executable).with_name("dripdrop")
DRIPDROP = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "dripdrop.cli"]
CORES = os.cpu_count() or 1


def plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Sample:
    shape: str
    workers: int
    n: int
    seconds: float
    worker_cpu: float
    pg_cpu: float

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    def row(self) -> str:
        per = 1e6 / self.n
        return (
            f"{self.shape:<7} {self.workers:>3} {self.n:>7,} {self.seconds:>8.2f} "
            f"{self.rate:>9,.0f} {self.worker_cpu * per:>10.0f} {self.pg_cpu * per:>9.0f} "
            f"{self.pg_cpu / self.seconds:>8.2f}"
        )


HEADER = (
    f"{'shape':<7} {'wrk':>3} {'n':>7} {'seconds':>8} {'exec/s':>9} "
    f"{'worker µs':>10} {'pg µs':>9} {'pg busy':>8}"
)


class Backends:
    """The CPU of the PostgreSQL backends serving one schema's workers, sampled so backends
    that come and go during the run (pool overflow) are counted too."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn = dsn
        self.app = f"dripdrop worker {schema}"[:63]
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def sample(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            pids = [
                r[0]
                for r in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self.app,)
                )
            ]
        for pid in pids:
            cpu = cpu_seconds(pid)
            if cpu is None:
                continue
            self.first.setdefault(pid, cpu)
            self.last[pid] = cpu

    def begin(self) -> None:
        self.sample()
        self.first = dict(self.last)  # what the backends had used before the drain

    def used(self) -> float:
        return sum(self.last[pid] - self.first.get(pid, 0.0) for pid in self.last)


def new_schema(url: str, shape: str, sink_url: str | None, key: str) -> DripDrop:
    dd = DripDrop(
        url,
        schema=f"ddscale_{uuid.uuid4().hex[:8]}",
        encryption_key=key,
        allow_private_network=True,
    )
    dd.setup()
    seq = dd.create_sequence(name="Scale", key="scale")
    version = dd.create_sequence_version(seq.id, active=True)
    if shape == "memory":
        dd.create_channel_adapter(name="mem", channel="email", provider="memory")
        config = {"subject": "Hi {{ name }}", "body": "Hello {{ name }}"}
        dd.create_step(version.id, name="a", channel="email", config=config)
    else:
        dd.create_channel_adapter(name="sink", channel="webhook", provider="http")
        body = {"subscriber": "{{ subscriber_id }}"}
        dd.create_step(
            version.id, name="a", channel="webhook", config={"url": sink_url, "body": body}
        )
    return dd


@contextlib.contextmanager
def workers(
    dd: DripDrop, count: int, concurrency: int, key: str, logs: Path
) -> Iterator[list[int]]:
    """``count`` ``dripdrop worker`` processes on dd's schema, listening before this yields."""
    env = {
        **os.environ,
        "DRIPDROP_ENCRYPTION_KEY": key,
        "DRIPDROP_ALLOW_PRIVATE_NETWORK": "true",
        "PYTHONUNBUFFERED": "1",
    }
    procs = []
    logs.mkdir(parents=True, exist_ok=True)
    try:
        for i in range(count):
            log = (logs / f"{dd.schema}-{i}.log").open("wb")
            args = [*DRIPDROP, "worker", "--schema", dd.schema]
            args += ["--database-url", dd.runtime.database_url, "-c", str(concurrency)]
            procs.append(subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 180
        for i, proc in enumerate(procs):
            path = logs / f"{dd.schema}-{i}.log"
            while "worker on schema" not in path.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {i} did not start:\n{path.read_text()[-2000:]}")
                time.sleep(0.1)
        time.sleep(1.0)  # past the start: listening, pools opened on the first poll
        yield [proc.pid for proc in procs]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def finished(dsn: str, schema: str) -> tuple[int, int]:
    """(executions finished, of which sent)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            f"SELECT count(*) FILTER (WHERE state <> 'scheduled'), "
            f"count(*) FILTER (WHERE state = 'sent') FROM \"{schema}\".step_executions"
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def run_one(url: str, shape: str, count: int, n: int, sink_url: str | None) -> Sample:
    dsn = plain(url)
    key = generate_key()
    dd = new_schema(url, shape, sink_url, key)
    concurrency = 1000 if shape == "memory" else 100
    try:
        with workers(dd, count, concurrency, key, LOGS) as pids:
            backends = Backends(dsn, dd.schema)
            backends.begin()
            worker_before = sum(cpu_seconds(p) or 0.0 for p in pids)
            items = (
                {
                    "subscriber": {"type": "User", "id": str(i)},
                    "data": {"name": f"U{i}", "email": f"u{i}@example.com"},
                }
                for i in range(n)
            )
            started = time.monotonic()
            assert dd.enroll_many("scale", items) == n
            while (done := finished(dsn, dd.schema))[0] < n:
                backends.sample()
                time.sleep(0.2)
            seconds = time.monotonic() - started
            if done[1] != n:
                raise RuntimeError(f"{n - done[1]} of {n} executions were not sent: see {LOGS}")
            backends.sample()
            worker_cpu = sum(cpu_seconds(p) or 0.0 for p in pids) - worker_before
            return Sample(shape, count, n, seconds, worker_cpu, backends.used())
    finally:
        schema = dd.schema
        dd.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "DRIPDROP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--n", type=int, default=20_000, help="executions, memory shape")
    parser.add_argument("--http-n", type=int, default=5_000, help="executions, http shape")
    parser.add_argument("--only", default="memory,http")
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",")]
    shapes = args.only.split(",")
    print(f"{CORES} cores; load average {os.getloadavg()[0]:.1f} at start")
    print(HEADER)
    with contextlib.ExitStack() as stack:
        sink_url = None
        if "http" in shapes:
            sink = stack.enter_context(Sink())
            sink_url = f"{sink.url}/hook"
        for shape in shapes:
            n = args.n if shape == "memory" else args.http_n
            for count in counts:
                sample = run_one(args.database_url, shape, count, n, sink_url)
                print(sample.row(), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
