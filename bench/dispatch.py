"""Dispatch throughput and latency of DripDrop's PostgreSQL queue, beside bare baselines.

Run: ``.venv/bin/python bench/dispatch.py [--database-url URL] [--quick]``. The URL defaults to
``DRIPDROP_BENCH_DATABASE_URL``, else ``postgresql://postgres@127.0.0.1:5432/test``. Every part
works in fresh schemas (``ddbench_*``) that are dropped at the end, even on failure.

Each throughput figure is the median of ``--runs`` runs (3); each ratio is the median of the
per-run ratios, ours against a baseline measured in the same run on the same database:

(a) ``enroll_many`` rows/s beside a raw psycopg COPY of the same rows into the same indexed
    ``enrollments`` table.
(b) executions/s draining N immediate executions of a 2-step sequence (claim, conditions, render,
    deliver to the memory provider, record, schedule the delayed second step) with ``run_due`` and
    with ``run_worker``, both with their default claims of 500 rows (``run_worker`` at concurrency
    1000: two lanes of 500), beside (i) a bare ``FOR UPDATE SKIP LOCKED`` claim-and-update loop
    (batch 100) on a table like ``step_executions`` and (ii) pgqueuer draining N no-op jobs
    (asyncpg driver, 2 consumers x batch 100, drain mode). ``run_due`` with claims of 100 rows,
    the bare loop's batch, is shown beside them for reference.
(c) claim latency (a batch of 100 due rows, claimed then set back) with 10k vs 5M (1M with
    --quick) future rows in ``step_executions``, and the EXPLAIN of the claim.
(d) ``run_due`` drain rate of 20k due executions with 100k future rows present vs none.
(e) enroll -> delivered latency of an immediate step on an idle ``run_worker`` (poll 5 s, woken
    by LISTEN/NOTIFY).
(r) real deliveries (``--real-n``, 5,000) to a loopback sink (``bench/sink.py``: a minimal
    asyncio HTTP/1.1 keep-alive server in its own process): ``run_due(concurrency=C)`` over a
    one-step sequence, for a signed webhook and for Mailgun's API, beside bare httpx2 and bare
    aiohttp clients (the ``bench`` extra) posting the same requests to the same sink, at most C
    at a time, for C = 10 and 100. DripDrop runs its loops on uvloop (a dependency), so bare
    aiohttp runs twice, on asyncio's loop and on uvloop; "fastest bare" is the best of them.
    Same requests: same body and headers, including the
    User-Agent/Accept ones DripDrop's HTTP client sent, byte counts checked at the sink. Prints
    exec/s, the client process's CPU per delivery, the sink's own CPU (its ceiling) and
    DripDrop / fastest bare.
(w) the webhook case of (r) at C = 100 (``--profile-real-n``, 2,000) under cProfile in CPU
    time (``--profile-real`` adds it): CPU by group (HTTP client stack, engine, signing,
    database ...) and the top 25 functions. Parts r and w are not in the default ``--only``.

Then ``run_due`` is profiled once with cProfile (event-loop thread and database threads merged)
into ``bench/profile_dispatch.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import cProfile
import hashlib
import hmac
import io
import json
import os
import pstats
import re
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from sink import Sink  # bench/sink.py: this script's directory is first on sys.path
from sqlalchemy import text
from sqlalchemy.engine import make_url

from dripdrop import DripDrop
from dripdrop.channels.providers.dev import DEFAULT_OUTBOX
from dripdrop.crypto import generate_key
from dripdrop.ids import new_id_strings
from dripdrop.worker.queries import CLAIM, q

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
PROFILE_PATH = Path(__file__).with_name("profile_dispatch.txt")
CONFIG = {"subject": "Hi {{ name }}", "body": "Hello {{ name }}"}
DELAY = {"type": "delay", "delay_amount": 1, "delay_unit": "days"}
ENROLLMENT_COLUMNS = (
    "id, sequence_id, sequence_version_id, subscriber_type, subscriber_id, state, "
    "current_step_id, started_at, completed_at, data, metadata, tenant_key"
)
SET_BACK = """
UPDATE {s}.step_executions
SET state = 'scheduled', lease_token = NULL, locked_by = NULL, locked_until = NULL
WHERE id = ANY(:ids)
"""
FUTURE_ROWS = """
INSERT INTO {s}.step_executions (id, enrollment_id, step_id, state, scheduled_for, channel,
    idempotency_key)
SELECT gen_random_uuid(), :enrollment, :step, 'scheduled',
       now() + interval '30 days' + g * interval '1 second', 'email', 'future-' || g
FROM generate_series(1, :n) AS g
"""
DUE_ROWS = FUTURE_ROWS.replace(
    "now() + interval '30 days' + g * interval '1 second'",
    "now() - interval '1 hour' + g * interval '1 millisecond'",
).replace("'future-'", "'due-'")
BARE_CLAIM = """
WITH due AS (
    SELECT id FROM {s}.bare
    WHERE state = 'scheduled' AND NOT held AND scheduled_for <= %(now)s
    ORDER BY scheduled_for LIMIT 100 FOR UPDATE SKIP LOCKED
)
UPDATE {s}.bare AS x
SET state = 'sending', lease_token = %(token)s, locked_by = 'bare',
    locked_until = clock_timestamp() + interval '120 seconds', updated_at = %(now)s
FROM due WHERE x.id = due.id
RETURNING x.id
"""
BARE_DONE = """
UPDATE {s}.bare
SET state = 'sent', executed_at = %(now)s, lease_token = NULL, locked_by = NULL,
    locked_until = NULL, updated_at = %(now)s
WHERE id = ANY(%(ids)s) AND lease_token = %(token)s AND state = 'sending'
"""


# --------------------------------------------------------------------------- helpers


def plain_url(url: str) -> str:
    """The URL as libpq/asyncpg want it (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Bench:
    """Owns the fresh schemas of one run of the script and drops them at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dsn = plain_url(url)
        self.tag = uuid.uuid4().hex[:6]
        self.schemas: list[str] = []
        self.instances: list[DripDrop] = []

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True)

    def schema(self, part: str) -> str:
        name = f"ddbench_{self.tag}_{part}_{len(self.schemas)}"
        self.schemas.append(name)
        return name

    def drop(self, schema: str) -> None:
        with self.admin() as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        if schema in self.schemas:
            self.schemas.remove(schema)

    def new_dd(self, part: str, *, two_steps: bool = True) -> DripDrop:
        """A fresh schema with sequence ``b``: an immediate step, then (two_steps) a 1-day delay."""
        dd = DripDrop(self.url, schema=self.schema(part), encryption_key=generate_key())
        self.instances.append(dd)
        dd.setup()
        seq = dd.create_sequence(name="B", key="b")
        version = dd.create_sequence_version(seq.id, active=True)
        dd.create_channel_adapter(name="mem", channel="email", provider="memory")
        dd.create_step(version.id, name="a", channel="email", config=CONFIG)
        if two_steps:
            dd.create_step(version.id, name="b", channel="email", timing=DELAY, config=CONFIG)
        return dd

    def close(self, dd: DripDrop, *, drop: bool = True) -> None:
        dd.close()
        if dd in self.instances:
            self.instances.remove(dd)
        if drop:
            self.drop(dd.schema)

    def cleanup(self) -> None:
        for dd in list(self.instances):
            with contextlib.suppress(Exception):
                dd.close()
        for schema in list(self.schemas):
            with contextlib.suppress(Exception):
                self.drop(schema)


def items(n: int, prefix: str = "u") -> list[dict[str, Any]]:
    return [
        {
            "subscriber": {"type": "User", "id": f"{prefix}{i}"},
            "data": {"name": f"User {i}", "email": f"{prefix}{i}@example.com"},
        }
        for i in range(n)
    ]


def vacuum_analyze(bench: Bench, schema: str, *tables: str) -> None:
    with bench.admin() as c:
        for t in tables or ("enrollments", "step_executions"):
            c.execute(f'VACUUM ANALYZE "{schema}".{t}')


def ids_of(dd: DripDrop, sql: str, **params: Any) -> Any:
    with dd.runtime.engine.begin() as c:
        return c.execute(text(sql.format(s=f'"{dd.schema}"')), params).first()


def med(values: list[float]) -> float:
    return statistics.median(values)


def say(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------- (a) enrollment


def raw_copy(bench: Bench, dd: DripDrop, rows: list[tuple[Any, ...]]) -> float:
    """Seconds for a plain psycopg COPY (write_row) of prepared rows, committed."""
    with psycopg.connect(bench.dsn) as c:
        t0 = time.perf_counter()
        with (
            c.cursor() as cur,
            cur.copy(f'COPY "{dd.schema}".enrollments ({ENROLLMENT_COLUMNS}) FROM STDIN') as cp,
        ):
            for r in rows:
                cp.write_row(r)
        c.commit()
        return time.perf_counter() - t0


def bench_enroll(bench: Bench, n: int, runs: int) -> dict[str, Any]:
    ours, base, ratios = [], [], []
    data = items(n)
    for run in range(runs):
        dd = bench.new_dd("a")
        seq = ids_of(dd, "SELECT id FROM {s}.sequences WHERE key = 'b'")[0]
        ver, step = ids_of(dd, "SELECT sequence_version_id, id FROM {s}.steps WHERE key = 'a'")
        now = datetime.now(UTC)
        # The same kind of ids enroll_many makes (time-ordered), so both sides index alike.
        rows = [
            (
                row_id,
                seq,
                ver,
                "User",
                it["subscriber"]["id"],
                "active",
                step,
                now,
                None,
                json.dumps(it["data"], separators=(",", ":")),
                "{}",
                None,
            )
            for row_id, it in zip(new_id_strings(n), data, strict=True)
        ]

        def ours_once(dd: DripDrop = dd) -> float:
            t0 = time.perf_counter()
            got = dd.enroll_many("b", data)
            el = time.perf_counter() - t0
            assert got == n, got
            return el

        def truncate(dd: DripDrop = dd) -> None:
            with bench.admin() as c:
                c.execute(f'TRUNCATE "{dd.schema}".enrollments CASCADE')
                c.execute("CHECKPOINT")

        truncate()
        if run % 2 == 0:  # alternate the order so neither side always runs on a warmer server
            tb = raw_copy(bench, dd, rows)
            truncate()
            to = ours_once()
        else:
            to = ours_once()
            truncate()
            tb = raw_copy(bench, dd, rows)
        ours.append(n / to)
        base.append(n / tb)
        ratios.append(tb / to)
        say(f"  (a) run {run + 1}: enroll_many {n / to:,.0f} rows/s, raw COPY {n / tb:,.0f} rows/s")
        bench.close(dd)
    return {"ours": med(ours), "base": med(base), "ratio": med(ratios)}


# --------------------------------------------------------------------------- (b) end to end


def enrolled(bench: Bench, part: str, n: int) -> DripDrop:
    dd = bench.new_dd(part)
    assert dd.enroll_many("b", items(n)) == n
    vacuum_analyze(bench, dd.schema)
    DEFAULT_OUTBOX.clear()
    return dd


def time_run_due(dd: DripDrop, n: int, **options: Any) -> float:
    DEFAULT_OUTBOX.clear()
    t0 = time.perf_counter()
    summary = dd.run_due(**options)
    el = time.perf_counter() - t0
    assert summary.sent == n, summary
    assert len(DEFAULT_OUTBOX) == n, len(DEFAULT_OUTBOX)
    DEFAULT_OUTBOX.clear()
    return el


def time_run_worker(dd: DripDrop, n: int, concurrency: int) -> float:
    """Seconds from starting ``run_worker`` until nothing is due or being sent."""
    DEFAULT_OUTBOX.clear()
    stop = threading.Event()
    result: list[Any] = []
    thread = threading.Thread(
        target=lambda: result.append(dd.run_worker(concurrency=concurrency, stop_event=stop)),
        daemon=True,
    )
    left = (
        f'SELECT count(*) FROM "{dd.schema}".step_executions '
        "WHERE state = 'sending' OR (state = 'scheduled' AND scheduled_for <= now())"
    )
    t0 = time.perf_counter()
    thread.start()
    with psycopg.connect(plain_url(dd.runtime.database_url), autocommit=True) as c:
        while len(DEFAULT_OUTBOX) < n:
            time.sleep(0.02)
            if not thread.is_alive():
                raise RuntimeError("run_worker exited early")
        while c.execute(left).fetchone()[0]:
            time.sleep(0.002)
    el = time.perf_counter() - t0
    stop.set()
    thread.join(60)
    assert result and result[0].sent == n, result
    DEFAULT_OUTBOX.clear()
    return el


def time_bare(bench: Bench, dd: DripDrop, n: int) -> float:
    """The ceiling: claim 100 with SKIP LOCKED, mark them sent; one connection, two transactions
    per batch like the worker, on a copy of step_executions' columns and indexes."""
    s = f'"{dd.schema}"'
    with bench.admin() as c:
        c.execute(
            f"CREATE TABLE {s}.bare (LIKE {s}.step_executions INCLUDING DEFAULTS INCLUDING INDEXES)"
        )
        c.execute(
            f"INSERT INTO {s}.bare (id, enrollment_id, step_id, state, scheduled_for, channel, "
            "idempotency_key) SELECT x.id, x.enrollment_id, %s, 'scheduled', "
            "now() - interval '1 hour' + x.g * interval '1 microsecond', 'email', x.id::text "
            "FROM unnest(%s::uuid[], %s::uuid[]) WITH ORDINALITY AS x(id, enrollment_id, g)",
            # Ids and keys like DripDrop's own rows: time-ordered ids, one step for all.
            (uuid.uuid4(), new_id_strings(n), new_id_strings(n)),
        )
        c.execute(f"VACUUM ANALYZE {s}.bare")
    claim, done = BARE_CLAIM.format(s=s), BARE_DONE.format(s=s)
    total = 0
    with psycopg.connect(bench.dsn) as c, c.cursor() as cur:
        t0 = time.perf_counter()
        while True:
            now, token = datetime.now(UTC), uuid.uuid4()
            ids = [r[0] for r in cur.execute(claim, {"now": now, "token": token}).fetchall()]
            c.commit()
            if not ids:
                break
            cur.execute(done, {"now": now, "ids": ids, "token": token})
            c.commit()
            total += len(ids)
        el = time.perf_counter() - t0
    assert total == n, total
    return el


async def pgqueuer_drain(dsn: str, n: int, consumers: int = 2, batch: int = 100) -> float:
    """Seconds for ``consumers`` pgqueuer QueueManagers (asyncpg) to drain n no-op jobs."""
    import asyncpg
    from pgqueuer import AsyncpgDriver, Queries, QueueManager
    from pgqueuer.domain.settings import db_settings
    from pgqueuer.types import QueueExecutionMode

    tag = uuid.uuid4().hex[:8]
    schema = f"ddbench_pgq_{tag}"
    os.environ["PGQUEUER_SCHEMA"] = schema
    os.environ["PGQUEUER_PREFIX"] = f"b{tag}_"
    db_settings.cache_clear()
    setup = await asyncpg.connect(dsn)
    try:
        queries = Queries(AsyncpgDriver(setup))
        await queries.install()
        for start in range(0, n, 10_000):
            k = min(10_000, n - start)
            await queries.enqueue(["noop"] * k, [None] * k, [0] * k)
        await setup.execute(f"VACUUM ANALYZE {db_settings().qualified.queue_table}")
        conns = [await asyncpg.connect(dsn) for _ in range(consumers)]
        managers = []
        done = 0

        for conn in conns:
            qm = QueueManager(Queries(AsyncpgDriver(conn)))

            @qm.entrypoint("noop")
            async def noop(job: Any) -> None:
                nonlocal done
                done += 1

            managers.append(qm)
        t0 = time.perf_counter()
        await asyncio.gather(
            *(
                qm.run(
                    batch_size=batch,
                    mode=QueueExecutionMode.drain,
                    dequeue_timeout=timedelta(seconds=1),
                )
                for qm in managers
            )
        )
        el = time.perf_counter() - t0
        for conn in conns:
            await conn.close()
        left = await setup.fetchval(f"SELECT count(*) FROM {db_settings().qualified.queue_table}")
        assert done == n and left == 0, (done, left)
        return el
    finally:
        await setup.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await setup.close()


def bench_e2e(bench: Bench, n: int, runs: int, concurrency: int) -> dict[str, Any]:
    out: dict[str, list[float]] = {
        k: []
        for k in (
            "due",
            "due100",
            "worker",
            "bare",
            "pgq",
            "due_bare",
            "due100_bare",
            "worker_bare",
            "due_pgq",
            "worker_pgq",
        )
    }
    for run in range(runs):
        dd = enrolled(bench, "b", n)
        due = n / time_run_due(dd, n)
        bare = n / time_bare(bench, dd, n)
        bench.close(dd)
        dd = enrolled(bench, "d", n)
        due100 = n / time_run_due(dd, n, batch_size=100)
        bench.close(dd)
        dd = enrolled(bench, "w", n)
        worker = n / time_run_worker(dd, n, concurrency)
        bench.close(dd)
        pgq = n / asyncio.run(pgqueuer_drain(bench.dsn, n))
        for k, v in (
            ("due", due),
            ("due100", due100),
            ("worker", worker),
            ("bare", bare),
            ("pgq", pgq),
        ):
            out[k].append(v)
        out["due_bare"].append(due / bare)
        out["due100_bare"].append(due100 / bare)
        out["worker_bare"].append(worker / bare)
        out["due_pgq"].append(due / pgq)
        out["worker_pgq"].append(worker / pgq)
        say(
            f"  (b) run {run + 1}: run_due {due:,.0f}/s (claims of 100: {due100:,.0f}/s), "
            f"run_worker {worker:,.0f}/s, bare SKIP LOCKED {bare:,.0f}/s, pgqueuer {pgq:,.0f}/s"
        )
    return {k: med(v) for k, v in out.items()}


# --------------------------------------------------------------------------- (t) transitions


def with_transitions(bench: Bench, n: int) -> DripDrop:
    """Sequence ``b`` whose first step chooses its next step by transitions: a data condition
    that fails (priority 1) then one that holds (priority 2) to ``b``, so every execution
    evaluates both before it is recorded. The path is the linear one's: a, then b a day later."""
    dd = bench.new_dd("t", two_steps=False)
    version = dd.get_active_version(dd.get_sequence("b").id)
    a = dd.list_steps(version.id)[0]
    c = dd.create_step(version.id, name="c", channel="email", config=CONFIG)
    b = dd.create_step(
        version.id, name="b", channel="email", timing=DELAY, config=CONFIG, position=2
    )
    dd.create_transition(version.id, from_step_id=c.id, to_step_id=None)
    never = dd.create_transition(
        version.id, from_step_id=a.id, to_step_id=c.id, condition_mode="all", priority=1
    )
    dd.create_condition(
        transition_id=never.id, field_path="name", operator="eq", expected_value="nobody"
    )
    hot = dd.create_transition(
        version.id, from_step_id=a.id, to_step_id=b.id, condition_mode="any", priority=2
    )
    dd.create_condition(
        transition_id=hot.id, field_path="email", operator="exists", expected_value=True
    )
    assert dd.enroll_many("b", items(n)) == n
    vacuum_analyze(bench, dd.schema)
    DEFAULT_OUTBOX.clear()
    return dd


def bench_transitions(bench: Bench, n: int, runs: int) -> dict[str, Any]:
    """``run_due`` draining N executions of the linear 2-step sequence vs the same path chosen
    by transitions, alternating, each in a fresh schema."""
    linear: list[float] = []
    flow: list[float] = []
    for run in range(runs):
        dd = enrolled(bench, "l", n)
        linear.append(n / time_run_due(dd, n))
        bench.close(dd)
        dd = with_transitions(bench, n)
        flow.append(n / time_run_due(dd, n))
        bench.close(dd)
        say(f"  (t) run {run + 1}: linear {linear[-1]:,.0f}/s, transitions {flow[-1]:,.0f}/s")
    ratios = [f / line for f, line in zip(flow, linear, strict=True)]
    return {"linear": med(linear), "transitions": med(flow), "ratio": med(ratios)}


# --------------------------------------------------------------------------- (c) claim latency


def claim_schema(bench: Bench, future: int) -> tuple[DripDrop, float]:
    """A schema with 100 due rows and ``future`` scheduled-but-not-due rows (one enrollment and
    step reused, so every foreign key holds). Returns it and the seconds the insert took."""
    dd = bench.new_dd("c")
    dd.enroll("b", {"type": "User", "id": "x"}, {"email": "x@example.com", "name": "X"})
    enrollment, step = ids_of(dd, "SELECT enrollment_id, step_id FROM {s}.step_executions")
    t0 = time.perf_counter()
    with dd.runtime.engine.begin() as c:
        c.execute(text(f'DELETE FROM "{dd.schema}".step_executions'))
        p = {"enrollment": enrollment, "step": step}
        c.execute(text(DUE_ROWS.format(s=f'"{dd.schema}"')), {**p, "n": 100})
        c.execute(text(FUTURE_ROWS.format(s=f'"{dd.schema}"')), {**p, "n": future})
    el = time.perf_counter() - t0
    vacuum_analyze(bench, dd.schema)
    with bench.admin() as c:
        c.execute("CHECKPOINT")  # flush the insert's dirty pages before measuring
    return dd, el


def claim_params() -> dict[str, Any]:
    return {
        "now": datetime.now(UTC),
        "limit": 100,
        "token": uuid.uuid4(),
        "worker": "bench",
        "lease": 120.0,
    }


def claim_times(dd: DripDrop, claims: int, warm: int = 5) -> list[float]:
    """Milliseconds of ``claims`` claims (statement + commit); each batch is then set back."""
    claim, back = q(CLAIM, dd.schema), text(SET_BACK.format(s=f'"{dd.schema}"'))
    times = []
    engine = dd.runtime.engine
    for k in range(claims + warm):
        with engine.connect() as c:
            t0 = time.perf_counter()
            with c.begin():
                ids = [r.id for r in c.execute(claim, claim_params())]
            el = time.perf_counter() - t0
            assert len(ids) == 100, len(ids)
            with c.begin():
                c.execute(back, {"ids": ids})
        if k >= warm:  # the first few warm up caches and prepared statements
            times.append(el * 1000)
    return times


def claim_round(
    small: DripDrop, large: DripDrop, claims: int, chunk: int = 25
) -> tuple[float, float]:
    """Median claim milliseconds on each schema, measured in alternating chunks so background
    activity (checkpoints, autovacuum) falls on both alike."""
    a: list[float] = []
    b: list[float] = []
    while len(a) < claims:
        a += claim_times(small, chunk)
        b += claim_times(large, chunk)
    return med(a), med(b)


def claim_plan(dd: DripDrop) -> list[str]:
    with dd.runtime.engine.begin() as c:
        rows = c.execute(text("EXPLAIN " + CLAIM.format(s=f'"{dd.schema}"')), claim_params())
        return [r[0] for r in rows]


def bench_claim(bench: Bench, big: int, runs: int, claims: int) -> dict[str, Any]:
    small_dd, _ = claim_schema(bench, 10_000)
    say(f"  (c) inserting {big:,} future rows (one INSERT ... SELECT generate_series) ...")
    big_dd, took = claim_schema(bench, big)
    say(f"  (c) inserted {big:,} future rows in {took:.1f} s (+ VACUUM ANALYZE)")
    small, large, ratios = [], [], []
    for run in range(runs):
        a, b = claim_round(small_dd, big_dd, claims)
        small.append(a)
        large.append(b)
        ratios.append(b / a)
        say(f"  (c) run {run + 1}: claim of 100: {a:.2f} ms (10k future), {b:.2f} ms ({big:,})")
    plan = claim_plan(big_dd)
    bench.close(small_dd)
    bench.close(big_dd)
    return {"small": med(small), "large": med(large), "ratio": med(ratios), "plan": plan}


# --------------------------------------------------------------------------- (d) drain rate


def bench_drain(bench: Bench, n: int, future: int, runs: int) -> dict[str, Any]:
    none, some, ratios = [], [], []
    for run in range(runs):
        plain = enrolled(bench, "d", n)
        loaded = enrolled(bench, "f", n)
        enrollment, step = ids_of(
            loaded, "SELECT enrollment_id, step_id FROM {s}.step_executions LIMIT 1"
        )
        with loaded.runtime.engine.begin() as c:
            c.execute(
                text(FUTURE_ROWS.format(s=f'"{loaded.schema}"')),
                {"enrollment": enrollment, "step": step, "n": future},
            )
        vacuum_analyze(bench, loaded.schema, "step_executions")
        access = [ln.strip() for ln in claim_plan(loaded) if " on enrollments" in ln]
        if run % 2 == 0:
            a = n / time_run_due(plain, n)
            b = n / time_run_due(loaded, n)
        else:
            b = n / time_run_due(loaded, n)
            a = n / time_run_due(plain, n)
        none.append(a)
        some.append(b)
        ratios.append(b / a)
        say(f"  (d) run {run + 1}: run_due {a:,.0f}/s (no future rows), {b:,.0f}/s ({future:,})")
        bench.close(plain)
        bench.close(loaded)
    return {
        "none": med(none),
        "some": med(some),
        "ratio": med(ratios),
        "enrollments_access": access[0] if access else "?",
    }


# --------------------------------------------------------------------------- (e) latency


def bench_latency(bench: Bench, samples: int) -> dict[str, Any]:
    dd = bench.new_dd("e")
    DEFAULT_OUTBOX.clear()
    stop = threading.Event()
    thread = threading.Thread(
        target=lambda: dd.run_worker(concurrency=10, stop_event=stop, poll_interval=5.0),
        daemon=True,
    )
    thread.start()
    time.sleep(1.5)  # idle: LISTENing, waiting on the 5 s poll
    lat, enroll_call = [], []
    try:
        for k in range(samples + 3):
            before = len(DEFAULT_OUTBOX)
            t0 = time.perf_counter()
            dd.enroll("b", {"type": "User", "id": f"l{k}"}, {"email": f"l{k}@x.test", "name": "L"})
            t1 = time.perf_counter()
            deadline = t0 + 10
            while len(DEFAULT_OUTBOX) <= before:
                if time.perf_counter() > deadline:
                    raise RuntimeError("no delivery within 10 s")
                time.sleep(0.0002)
            t2 = time.perf_counter()
            if k >= 3:
                lat.append((t2 - t0) * 1000)
                enroll_call.append((t1 - t0) * 1000)
            time.sleep(0.25)  # let the worker go idle again
    finally:
        stop.set()
        thread.join(30)
        DEFAULT_OUTBOX.clear()
        bench.close(dd)
    return {
        "median": med(lat),
        "p90": statistics.quantiles(lat, n=10)[-1],
        "max": max(lat),
        "enroll": med(enroll_call),
    }


# --------------------------------------------------------------------------- (r) real deliveries

# DripDrop runs its own loops on uvloop when it is installed (worker/loop_tuning.py): the bare
# aiohttp client runs on both loops, so the fastest bare client is its best on either.
CLIENTS = ("DripDrop", "httpx2", "aiohttp", "aiohttp+uvloop")
REAL_CONCURRENCIES = (10, 100)
WEBHOOK_PATH = "/hooks/welcome"
WEBHOOK_KEY = b"dripdrop-bench-signing-key-0123"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(WEBHOOK_KEY).decode()
WEBHOOK_BODY = '{"event":"welcome","email":"{{ email }}","name":"{{ name }}"}'
MAILGUN_DOMAIN = "mg.example.com"
MAILGUN_KEY = "key-bench-0123456789"
MAILGUN_AUTH = "Basic " + base64.b64encode(f"api:{MAILGUN_KEY}".encode()).decode()
# Headers every request carries whatever its content: the bare clients send the ones DripDrop's
# HTTP client sent (``client_headers``), instead of their own defaults.
PER_REQUEST_HEADERS = frozenset({"host", "content-length"})

Request = tuple[str, dict[str, str], bytes]


def webhook_request(base: str, i: int, key: str) -> Request:
    """The webhook step's request to subscriber ``u{i}`` (execution id ``key``), signed the
    Standard Webhooks way with the stdlib alone (``check_signing`` compares it with DripDrop's)."""
    body = f'{{"event":"welcome","email":"u{i}@example.com","name":"User {i}"}}'.encode()
    stamp = str(int(time.time()))
    mac = hmac.new(WEBHOOK_KEY, f"{key}.{stamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": key,
        "webhook-id": key,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    return base + WEBHOOK_PATH, headers, body


def mailgun_request(base: str, i: int, key: str) -> Request:
    """The Mailgun adapter's request for the email step to ``u{i}``: its form fields, in order."""
    form = {
        "from": "a@example.com",
        "to": f"u{i}@example.com",
        "subject": f"Hi User {i}",
        "text": f"Hello User {i}",
        "h:Message-Id": f"<{key}@example.com>",
        "html": f"Hello User {i}",
    }
    headers = {"Authorization": MAILGUN_AUTH, "Content-Type": "application/x-www-form-urlencoded"}
    return f"{base}/v3/{MAILGUN_DOMAIN}/messages", headers, urlencode(form).encode()


@dataclass(frozen=True)
class Shape:
    """One kind of real delivery: DripDrop's adapter and step for it, and the same request as
    the bare clients build it."""

    name: str
    channel: str
    provider: str
    credentials: dict[str, Any]
    config: Callable[[str], dict[str, Any]]  # the adapter's config, given the sink's URL
    step: Callable[[str], dict[str, Any]]  # the step's config, given the sink's URL
    request: Callable[[str, int, str], Request]


SHAPES = (
    Shape(
        "webhook",
        "webhook",
        "http",
        {"signing_secret": WEBHOOK_SECRET},
        lambda url: {},
        lambda url: {"url": url + WEBHOOK_PATH, "body": WEBHOOK_BODY},
        webhook_request,
    ),
    Shape(
        "mailgun",
        "email",
        "mailgun",
        {"api_key": MAILGUN_KEY},
        lambda url: {"domain": MAILGUN_DOMAIN, "from": "a@example.com", "base_url": url},
        lambda url: CONFIG,
        mailgun_request,
    ),
)


@dataclass
class Sample:
    """One timed run of one client: wall and client-process CPU seconds, what the sink saw."""

    n: int
    seconds: float
    cpu: float  # the client process, all threads (DripDrop's database threads included)
    sink: dict[str, Any]
    sink_cpu: float

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.n * 1e6

    @property
    def sink_us(self) -> float:
        return self.sink_cpu / self.n * 1e6

    @property
    def sink_busy(self) -> float:
        """The share of one core the sink used: near 1 would make it the bottleneck."""
        return self.sink_cpu / self.seconds


def timed(sink: Sink, n: int, fn: Callable[[], Any]) -> Sample:
    """Time ``fn`` (which must make ``n`` requests to the sink) and check the sink saw them."""
    start = sink.reset()
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    seen = sink.reset()
    assert seen["requests"] == n, f"the sink saw {seen['requests']} requests, not {n}"
    return Sample(n, seconds, cpu, seen, seen["cpu"] - start["cpu"])


def real_dd(bench: Bench, shape: Shape, sink_url: str) -> DripDrop:
    """A fresh schema with sequence ``r``: one immediate step of ``shape`` posting to the sink."""
    dd = DripDrop(
        bench.url,
        schema=bench.schema("r"),
        encryption_key=generate_key(),
        allow_private_network=True,  # the sink listens on loopback
    )
    bench.instances.append(dd)
    dd.setup()
    seq = dd.create_sequence(name="R", key="r")
    version = dd.create_sequence_version(seq.id, active=True)
    dd.create_channel_adapter(
        name=shape.name,
        channel=shape.channel,
        provider=shape.provider,
        credentials=shape.credentials,
        config=shape.config(sink_url),
    )
    dd.create_step(version.id, name="a", channel=shape.channel, config=shape.step(sink_url))
    return dd


def enrolled_real(bench: Bench, shape: Shape, sink: Sink, n: int) -> DripDrop:
    dd = real_dd(bench, shape, sink.url)
    assert dd.enroll_many("r", items(n)) == n
    vacuum_analyze(bench, dd.schema)
    return dd


def all_sent(dd: DripDrop, n: int) -> None:
    sent, total = ids_of(
        dd, "SELECT count(*) FILTER (WHERE state = 'sent'), count(*) FROM {s}.step_executions"
    )
    assert sent == total == n, (sent, total, n)


def run_dripdrop(bench: Bench, shape: Shape, sink: Sink, n: int, c: int) -> Sample:
    """``run_due(concurrency=c)`` over ``n`` enrolled subscribers (enrolling is not timed)."""
    dd = enrolled_real(bench, shape, sink, n)
    summaries: list[Any] = []
    sample = timed(sink, n, lambda: summaries.append(dd.run_due(concurrency=c)))
    assert summaries[0].sent == n, summaries
    all_sent(dd, n)
    bench.close(dd)
    return sample


async def each(keys: list[str], c: int, send: Callable[[int, str], Any]) -> None:
    """Await ``send(i, key)`` for every key, at most ``c`` at a time (as run_due bounds them)."""
    sem = asyncio.Semaphore(c)

    async def one(i: int, key: str) -> None:
        async with sem:
            await send(i, key)

    await asyncio.gather(*(one(i, key) for i, key in enumerate(keys)))


async def post_httpx2(
    shape: Shape, base: str, keys: list[str], c: int, extra: dict[str, str]
) -> None:
    import httpx2

    # Default limits (no pool cap), as create_http_client's; the semaphore bounds it.
    async with httpx2.AsyncClient(timeout=10.0, trust_env=False) as client:
        client.headers.clear()  # httpx2's defaults: send DripDrop's instead
        client.headers.update(extra)

        async def send(i: int, key: str) -> None:
            url, headers, body = shape.request(base, i, key)
            response = await client.post(url, content=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"httpx2: HTTP {response.status_code}")

        await each(keys, c, send)


async def post_aiohttp(
    shape: Shape, base: str, keys: list[str], c: int, extra: dict[str, str]
) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=c)
    timeout = aiohttp.ClientTimeout(total=10)
    # aiohttp's own defaults go, unless DripDrop's client sent the same header.
    sent = {name.lower() for name in extra}
    skip = [h for h in ("Accept", "Accept-Encoding", "User-Agent") if h.lower() not in sent]
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=extra, skip_auto_headers=skip
    ) as session:

        async def send(i: int, key: str) -> None:
            url, headers, body = shape.request(base, i, key)
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"aiohttp: HTTP {response.status}")

        await each(keys, c, send)


def run_bare(
    post: Callable[..., Any],
    shape: Shape,
    sink: Sink,
    n: int,
    c: int,
    extra: dict[str, str],
    *,
    uvloop: bool = False,
) -> Sample:
    keys = new_id_strings(n)  # the same kind of ids DripDrop's executions have
    factory = _uvloop_factory() if uvloop else asyncio.new_event_loop

    def go() -> None:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(post(shape, sink.url, keys, c, extra))

    return timed(sink, n, go)


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    import uvloop

    return uvloop.new_event_loop  # type: ignore[no-any-return]


def header_lines(head: str) -> list[tuple[str, str]]:
    pairs = (line.partition(":") for line in head.split("\r\n")[1:])
    return [(name, value.strip()) for name, _, value in pairs]


def header_names(head: str) -> list[str]:
    return sorted(name.lower() for name, _ in header_lines(head))


def client_headers(shape: Shape, ours: dict[str, Any]) -> dict[str, str]:
    """The headers DripDrop's HTTP client added of its own (User-Agent, Accept ...), as its
    first request at the sink carried them: the bare clients send exactly these."""
    _, built, _ = shape.request("", 0, "k")
    own = PER_REQUEST_HEADERS | {name.lower() for name in built}
    return {
        name: value for name, value in header_lines(ours["first_head"]) if name.lower() not in own
    }


def check_same_requests(got: dict[str, Sample]) -> None:
    """All clients sent the same requests: same header names, same head and body bytes."""
    ours = got["DripDrop"].sink
    for name, sample in got.items():
        seen = sample.sink
        assert header_names(seen["first_head"]) == header_names(ours["first_head"]), (
            name,
            seen["first_head"],
            ours["first_head"],
        )
        for part in ("head_bytes", "body_bytes"):
            assert seen[part] == ours[part], (name, part, seen[part], ours[part])


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SUBSCRIBER = re.compile(r"u(\d+)(?:@|%40)example\.com")


def check_same_content(shape: Shape, ours: dict[str, Any]) -> None:
    """The bare clients' builder, given the subscriber and execution id of DripDrop's first
    request at the sink, makes the same body and the same headers (bar the time-stamped ones)."""
    head, body = ours["first_head"], ours["first_body"]
    found_key = UUID.search(head + body)
    found_sub = SUBSCRIBER.search(body)
    assert found_key and found_sub, (head, body)
    _, headers, ours_again = shape.request("", int(found_sub[1]), found_key[0])
    assert ours_again.decode() == body, (ours_again, body)
    lines = {line.lower() for line in head.split("\r\n")}
    for name, value in headers.items():
        if name not in ("webhook-timestamp", "webhook-signature"):
            assert f"{name}: {value}".lower() in lines, (name, value, head)


def check_signing() -> None:
    """The bare clients' stdlib signature is DripDrop's own (same key, id, time and body)."""
    from dripdrop.channels.webhook_signing import sign

    key = new_id_strings(1)[0]
    _, headers, body = webhook_request("", 0, key)
    stamp = int(headers["webhook-timestamp"])
    assert headers["webhook-signature"] == sign(WEBHOOK_SECRET, key, stamp, body)


def real_round(
    bench: Bench,
    shape: Shape,
    sink: Sink,
    n: int,
    c: int,
    extra: dict[str, str],
    first: int = 0,
) -> dict[str, Sample]:
    """One run of each client, starting with ``CLIENTS[first]`` (the order rotates by run, so
    no client always runs first or last)."""
    runners: dict[str, Callable[[], Sample]] = {
        "DripDrop": lambda: run_dripdrop(bench, shape, sink, n, c),
        "httpx2": lambda: run_bare(post_httpx2, shape, sink, n, c, extra),
        "aiohttp": lambda: run_bare(post_aiohttp, shape, sink, n, c, extra),
        "aiohttp+uvloop": lambda: run_bare(post_aiohttp, shape, sink, n, c, extra, uvloop=True),
    }
    k = first % len(CLIENTS)
    got = {name: runners[name]() for name in CLIENTS[k:] + CLIENTS[:k]}
    check_same_content(shape, got["DripDrop"].sink)
    check_same_requests(got)
    return {name: got[name] for name in CLIENTS}


def fastest_bare(got: dict[str, Sample]) -> str:
    return max(CLIENTS[1:], key=lambda name: got[name].rate)


def bench_real(bench: Bench, sink: Sink, n: int, runs: int) -> dict[tuple[str, int], Any]:
    """Every shape at every concurrency: ``runs`` rounds of the three clients each."""
    check_signing()
    out: dict[tuple[str, int], Any] = {}
    for shape in SHAPES:
        # Warm-up (imports, templates, first sockets), and the headers DripDrop's client sends.
        extra = client_headers(shape, run_dripdrop(bench, shape, sink, 200, 10).sink)
        say(f"  (r) {shape.name}: the HTTP client's own headers: {extra}")
        real_round(bench, shape, sink, 200, 10, extra)
        for c in REAL_CONCURRENCIES:
            samples = [real_run(bench, shape, sink, n, c, extra, run) for run in range(runs)]
            out[(shape.name, c)] = summarize_real(samples)
    return out


def real_run(
    bench: Bench, shape: Shape, sink: Sink, n: int, c: int, extra: dict[str, str], run: int
) -> dict[str, Sample]:
    got = real_round(bench, shape, sink, n, c, extra, first=run)
    figures = ", ".join(
        f"{name} {s.rate:,.0f}/s ({s.cpu_us:,.0f} µs CPU)" for name, s in got.items()
    )
    top = got[fastest_bare(got)]
    say(
        f"  (r) {shape.name} c={c} run {run + 1}: {figures}; sink "
        f"{top.sink_us:.0f} µs/req, {top.sink_busy:.0%} busy under the fastest"
    )
    return got


def summarize_real(samples: list[dict[str, Sample]]) -> dict[str, Any]:
    """Medians over the runs, per client, and the median per-run ratios of DripDrop's rate."""
    per: dict[str, Any] = {}
    for name in CLIENTS:
        runs = [s[name] for s in samples]
        per[name] = {
            "rate": med([s.rate for s in runs]),
            "cpu_us": med([s.cpu_us for s in runs]),
            "sink_us": med([s.sink_us for s in runs]),
            "sink_busy": med([s.sink_busy for s in runs]),
            "conns": med([s.sink["connections"] for s in runs]),
            "spread": (max(s.rate for s in runs) - min(s.rate for s in runs))
            / med([s.rate for s in runs]),
        }
    fastest = [fastest_bare(s) for s in samples]
    ratios = [s["DripDrop"].rate / s[f].rate for s, f in zip(samples, fastest, strict=True)]
    return {
        "clients": per,
        "fastest": statistics.mode(fastest),
        "vs_fastest": med(ratios),
        "vs_fastest_range": (min(ratios), max(ratios)),
        "vs_httpx2": med([s["DripDrop"].rate / s["httpx2"].rate for s in samples]),
        "head": samples[0]["DripDrop"].sink["head_bytes"] / samples[0]["DripDrop"].n,
        "body": samples[0]["DripDrop"].sink["body_bytes"] / samples[0]["DripDrop"].n,
    }


def print_real(res: dict[tuple[str, int], Any], n: int, runs: int) -> None:
    say(f"\n(r) real deliveries to the loopback sink, {n:,} each, medians of {runs} runs")
    head = (
        "case",
        "client",
        "exec/s",
        "CPU µs/exec",
        "sink µs/req",
        "sink busy",
        "conns",
        "spread",
    )
    table = [head]
    for (shape, c), r in res.items():
        for name, f in r["clients"].items():
            table.append(
                (
                    f"{shape} c={c}" if name == CLIENTS[0] else "",
                    name,
                    f"{f['rate']:,.0f}",
                    f"{f['cpu_us']:,.0f}",
                    f"{f['sink_us']:.0f}",
                    f"{f['sink_busy']:.0%}",
                    f"{f['conns']:.0f}",
                    f"{f['spread']:.0%}",
                )
            )
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for k, row in enumerate(table):
        say(
            "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if k == 0:
            say("  ".join("-" * w for w in widths))
    for (shape, c), r in res.items():
        f = r["clients"]
        # Without a profiler's distortion: how much of DripDrop's CPU per delivery bare httpx2
        # spends on the very same requests (the rest is engine, guard, database, ...).
        share = f["httpx2"]["cpu_us"] / f["DripDrop"]["cpu_us"]
        say(
            f"  {shape} c={c}: DripDrop / fastest bare ({r['fastest']}) {r['vs_fastest']:.2f} "
            f"(runs {r['vs_fastest_range'][0]:.2f}-{r['vs_fastest_range'][1]:.2f}), "
            f"/ bare httpx2 {r['vs_httpx2']:.2f}; bare httpx2's CPU per request is {share:.0%} "
            f"of DripDrop's per delivery; request {r['head']:.0f} B head + {r['body']:.0f} B "
            "body from every client"
        )
    sink_us = min(f["sink_us"] for r in res.values() for f in r["clients"].values())
    say(
        "  CPU µs/exec: the client process (time.process_time, all its threads; PostgreSQL's "
        "own CPU is not in it). spread: (max - min) / median of exec/s over the runs. The "
        f"sink's ceiling: about {1e6 / sink_us:,.0f} requests/s on one core at its best "
        f"{sink_us:.0f} µs/request; 'sink busy' is its share of a core during each client's runs."
    )


# --------------------------------------------------------------------------- profile


@contextlib.contextmanager
def profiled_db_threads(
    timer: Callable[[], float] | None = None,
) -> Iterator[list[cProfile.Profile]]:
    """cProfile every ThreadDb call (they run in asyncio.to_thread workers), one profile per
    thread, so the claim/record side shows up beside the event loop. ``timer`` as cProfile's
    (``time.thread_time`` for CPU time; wall time by default)."""
    from dripdrop.worker.db import ThreadDb

    profiles: list[cProfile.Profile] = []
    local = threading.local()
    original: Callable[..., Any] = ThreadDb._call

    def call(self: Any, fn: Callable[..., Any], *args: Any) -> Any:
        prof = getattr(local, "prof", None)
        if prof is None:
            prof = local.prof = cProfile.Profile(timer) if timer else cProfile.Profile()
            profiles.append(prof)
        prof.enable()
        try:
            return original(self, fn, *args)
        finally:
            prof.disable()

    ThreadDb._call = call  # type: ignore[method-assign]
    try:
        yield profiles
    finally:
        ThreadDb._call = original  # type: ignore[method-assign]


def profile_e2e(bench: Bench, n: int) -> str:
    dd = enrolled(bench, "p", n)
    main = cProfile.Profile()
    with profiled_db_threads() as threads:
        t0 = time.perf_counter()
        main.enable()
        summary = dd.run_due()
        main.disable()
        el = time.perf_counter() - t0
    DEFAULT_OUTBOX.clear()
    bench.close(dd)
    assert summary.sent == n, summary

    def dump(stats: pstats.Stats, sort: str, title: str, limit: int = 25) -> str:
        buf = io.StringIO()
        stats.stream = buf  # type: ignore[attr-defined]
        stats.sort_stats(sort).print_stats(limit)
        body = buf.getvalue()
        body = body[body.find("   ncalls") :] if "   ncalls" in body else body
        return f"==== {title} ====\n{body}\n"

    def stats_of(*profiles: cProfile.Profile) -> pstats.Stats:
        st = pstats.Stats(profiles[0])
        for p in profiles[1:]:
            st.add(p)
        return st.strip_dirs()

    merged = stats_of(main, *threads)
    header = (
        f"cProfile of dd.run_due() draining {n:,} immediate executions of the 2-step sequence "
        f"({el:.1f} s under the profiler, {n / el:,.0f}/s).\n"
        f"Merged: the event-loop thread (run_job: conditions, render, deliver) and "
        f"{len(threads)} asyncio.to_thread database thread(s) (claim_jobs, record_outcomes).\n"
        "Cumulative times of the event loop include its waits on the database threads.\n\n"
    )
    text_out = header + dump(merged, "cumulative", "top 25 by cumulative time (merged)")
    text_out += dump(stats_of(*threads), "cumulative", "database threads: top 25 cumulative")
    text_out += dump(stats_of(main), "tottime", "event-loop thread: top 25 by own time")
    text_out += dump(merged, "tottime", "top 25 by own time (merged)")
    PROFILE_PATH.write_text(text_out)
    return text_out


# Where the CPU of a real delivery goes: each function's own time, grouped by where it lives.
# Paths are matched in order; C built-ins ("~") are grouped by their names.
PROFILE_GROUPS = (
    ("HTTP client: httpx2", ("/httpx2/",)),
    ("HTTP client: httpcore2 + h11", ("/httpcore2/", "/h11/")),
    ("HTTP client: anyio streams", ("/anyio/", "/sniffio/")),
    (
        "HTTP client: aiohttp (+ yarl, multidict)",
        ("/aiohttp/", "/yarl/", "/multidict/", "/aiohappyeyeballs/", "/propcache/"),
    ),
    ("dripdrop.net (guard, guarded_request)", ("/dripdrop/net/",)),
    ("dripdrop.channels (provider, signing, scrub)", ("/dripdrop/channels/",)),
    ("dripdrop.templates", ("/dripdrop/templates/",)),
    ("dripdrop engine + worker + rest", ("/dripdrop/",)),
    ("database: SQLAlchemy + psycopg", ("/sqlalchemy/", "/psycopg")),
    ("pydantic", ("/pydantic",)),
    ("template engines (liquid, jinja2, ...)", ("/liquid/", "/jinja2/", "/pystache/")),
    ("asyncio event loop", ("/asyncio/", "/selectors.py")),
)
BUILTIN_GROUPS = (
    ("socket I/O (send/recv/connect)", ("_socket.socket",)),
    ("asyncio event loop", ("select.epoll", "_asyncio.")),
    ("database: SQLAlchemy + psycopg", ("psycopg", "sqlalchemy")),
    ("HTTP client: aiohttp (+ yarl, multidict)", ("aiohttp", "yarl", "multidict", "propcache")),
    ("hashing (hmac, sha256)", ("_hashlib", "hmac")),
    ("json", ("json", "orjson")),
    ("pydantic", ("pydantic",)),
)
HTTP_STACK = ("HTTP client:", "socket I/O")
# Helpers that only mean something through their callers (isinstance, dict.get, socket.py's
# properties ...): the charged view splits their time among the groups that called them.
HELPER_GROUPS = frozenset({"other C built-ins", "other Python (stdlib, ...)"})


def profile_group(filename: str, function: str) -> str:
    if filename == "~":
        for name, marks in BUILTIN_GROUPS:
            if any(m in function for m in marks):
                return name
        return "other C built-ins"
    path = filename.replace("\\", "/")
    for name, marks in PROFILE_GROUPS:
        if any(m in path for m in marks):
            return name
    return "other Python (stdlib, ...)"


def group_shares(stats: pstats.Stats, *, charged: bool = False) -> dict[str, float]:
    """Own (tottime) seconds per group; ``charged``: helpers' time goes to their callers'
    groups, in proportion to the time each caller spent in them."""
    rows = stats.stats  # type: ignore[attr-defined]
    totals: dict[str, float] = {}

    def add(key: tuple[str, int, str], seconds: float, depth: int = 0) -> None:
        group = profile_group(key[0], key[2])
        callers = {k: v for k, v in rows[key][4].items() if k in rows}
        spent = sum(v[2] for v in callers.values())
        if charged and group in HELPER_GROUPS and spent > 0 and depth < 10:
            for caller, v in callers.items():
                add(caller, seconds * v[2] / spent, depth + 1)
        else:
            totals[group] = totals.get(group, 0.0) + seconds

    for key, row in rows.items():
        add(key, row[2])
    return totals


# Entry points whose cumulative CPU tells the story: (file suffix, function, what it is).
PROFILE_POINTS = (
    ("dripdrop/net/client.py", "guarded_request", "guarded_request: the whole HTTP exchange"),
    ("httpx2/_client.py", "send", "httpx2 AsyncClient.send"),
    ("aiohttp/client.py", "_request", "aiohttp ClientSession._request"),
    ("dripdrop/channels/providers/webhook_http.py", "send", "WebhookProvider.send"),
    ("dripdrop/channels/webhook_signing.py", "signature_headers", "signing"),
    ("dripdrop/channels/http.py", "scrub_response", "scrub_response"),
    ("dripdrop/worker/db.py", "_call", "database calls (ThreadDb._call, DB threads)"),
)


def point_times(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Cumulative seconds of each entry point the profile saw (the HTTP client not in use is
    left out)."""
    found = []
    for suffix, function, label in PROFILE_POINTS:
        rows = [
            row
            for (filename, _line, fn), row in stats.stats.items()  # type: ignore[attr-defined]
            if fn == function and filename.replace("\\", "/").endswith(suffix)
        ]
        if rows:
            found.append((label, sum(row[3] for row in rows)))
    return found


def profile_real(bench: Bench, sink: Sink, n: int, c: int) -> str:
    """cProfile (CPU time per thread) of the webhook case's ``run_due``: the event-loop thread
    and the database threads, merged; shares by group, then the top 25 functions."""
    stats, sample, threads = profiled_delivery(bench, sink, n, c)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    head = (
        f"cProfile (thread CPU time) of run_due(concurrency={c}) delivering {n:,} signed webhooks "
        f"to the sink: {sample.rate:,.0f}/s under the profiler; process CPU {sample.cpu:.2f} s "
        f"({sample.cpu_us:,.0f} µs/exec), profiled CPU {total:.2f} s (event loop + {threads} "
        "database threads). The profiler's cost per call inflates code that makes many small "
        "calls (such as httpcore2's pool bookkeeping): the profiler-free CPU figures of (r) "
        "are the check."
    )
    text_out = head + "\n\n" + shares_table(stats, total) + "\n\n"
    stats.strip_dirs()
    text_out += dump_stats(stats, "cumulative", "top 25 by cumulative CPU (merged)")
    text_out += dump_stats(stats, "tottime", "top 25 by own CPU (merged)")
    return text_out


def profiled_delivery(bench: Bench, sink: Sink, n: int, c: int) -> tuple[pstats.Stats, Sample, int]:
    """The merged profile of one webhook drain, its sample and how many database threads."""
    dd = enrolled_real(bench, SHAPES[0], sink, n)
    # thread_time: CPU seconds, so waits on the sink and on PostgreSQL do not count.
    main = cProfile.Profile(time.thread_time)
    summaries: list[Any] = []

    def drain() -> None:
        main.enable()
        try:
            summaries.append(dd.run_due(concurrency=c))
        finally:
            main.disable()

    with profiled_db_threads(time.thread_time) as threads:
        sample = timed(sink, n, drain)
    assert summaries[0].sent == n, summaries
    all_sent(dd, n)
    bench.close(dd)
    stats = pstats.Stats(main)
    for prof in threads:
        stats.add(prof)
    return stats, sample, len(threads)


def shares_table(stats: pstats.Stats, total: float) -> str:
    own = group_shares(stats)
    charged = group_shares(stats, charged=True)
    lines = [
        "CPU by group, share of the profiled CPU: own time, and with stdlib / C helpers charged",
        "to their callers",
    ]
    for name in sorted(own, key=lambda g: -charged.get(g, 0.0)):
        lines.append(f"  {own[name] / total:6.1%}  {charged.get(name, 0.0) / total:6.1%}  {name}")
    for label, view in (("own", own), ("charged", charged)):
        http = sum(v for g, v in view.items() if g.startswith(HTTP_STACK))
        lines.append(
            f"  -> HTTP client stack (httpx2 or aiohttp and below, sockets), {label}: "
            f"{http / total:.1%}"
        )
    lines += ["", "Cumulative CPU of key entry points (share of the profiled CPU):"]
    lines += [f"  {ct / total:6.1%}  {ct:6.2f} s  {label}" for label, ct in point_times(stats)]
    return "\n".join(lines)


def dump_stats(stats: pstats.Stats, sort: str, title: str, limit: int = 25) -> str:
    buf = io.StringIO()
    stats.stream = buf  # type: ignore[attr-defined]
    stats.sort_stats(sort).print_stats(limit)
    body = buf.getvalue()
    body = body[body.find("   ncalls") :] if "   ncalls" in body else body
    return f"==== {title} ====\n{body}\n"


# --------------------------------------------------------------------------- main


def run_real_parts(
    bench: Bench, only: str, n: int, profile_n: int, runs: int, res: dict[str, Any]
) -> None:
    """Parts r and w, with one sink process for both."""
    with Sink() as sink:
        if "r" in only:
            say(
                f"(r) real deliveries, {n:,} per run, to the loopback sink at {sink.url}: "
                f"DripDrop vs bare httpx2 vs bare aiohttp, concurrency {REAL_CONCURRENCIES}"
            )
            res["r"] = bench_real(bench, sink, n, runs)
            print_real(res["r"], n, runs)
        if "w" in only:
            say(f"\n(w) profiling real webhook deliveries, {profile_n:,} at concurrency 100")
            say(profile_real(bench, sink, profile_n, 100).rstrip())


def verdict(ok: bool | None) -> str:
    """A target's result; ``None`` marks a figure shown for reference, without a target."""
    return "" if ok is None else "pass" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--database-url",
        default=os.environ.get("DRIPDROP_BENCH_DATABASE_URL", DEFAULT_URL),
    )
    ap.add_argument("--quick", action="store_true", help="1M future rows in (c) instead of 5M")
    ap.add_argument("--n", type=int, default=100_000, help="rows for (a) and (b)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--claims", type=int, default=200, help="claims per round in (c)")
    ap.add_argument("--worker-concurrency", type=int, default=1000)
    ap.add_argument("--profile-n", type=int, default=20_000)
    ap.add_argument("--future", type=int, default=0, help="override the big count of (c)")
    ap.add_argument("--only", default="abcdep", help="parts to run, e.g. 'ab' (p = profile)")
    ap.add_argument("--real-n", type=int, default=5_000, help="deliveries per run in (r), (w)")
    ap.add_argument(
        "--profile-real", action="store_true", help="profile real webhook deliveries (part w)"
    )
    # cProfile with a CPU-time timer slows deliveries about tenfold: (w) profiles fewer.
    ap.add_argument("--profile-real-n", type=int, default=2_000, help="deliveries in (w)")
    args = ap.parse_args(argv)
    big = args.future or (1_000_000 if args.quick else 5_000_000)
    if args.profile_real and "w" not in args.only:
        args.only += "w"
    n, runs = args.n, args.runs

    bench = Bench(args.database_url)
    res: dict[str, Any] = {}
    with bench.admin() as c:
        version = c.execute("SHOW server_version").fetchone()[0]
    say(
        f"DripDrop dispatch benchmark — PostgreSQL {version}, {os.cpu_count()} CPUs, "
        f"median of {runs} runs"
    )
    t_start = time.perf_counter()
    try:
        if "a" in args.only:
            say(f"(a) enroll_many vs raw COPY, {n:,} subscribers")
            res["a"] = bench_enroll(bench, n, runs)
        if "b" in args.only:
            say(
                f"(b) end to end, {n:,} immediate executions (default claims of 500 rows; "
                f"run_worker concurrency {args.worker_concurrency})"
            )
            res["b"] = bench_e2e(bench, n, runs, args.worker_concurrency)
        if "c" in args.only:
            say(f"(c) claim latency, 10k vs {big:,} future rows, {args.claims} claims per round")
            res["c"] = bench_claim(bench, big, runs, args.claims)
        if "d" in args.only:
            say("(d) run_due drain of 20k due executions, 100k future rows vs none")
            res["d"] = bench_drain(bench, 20_000, 100_000, runs)
        if "e" in args.only:
            say("(e) enroll -> delivered latency on an idle run_worker (poll 5 s), 30 samples")
            res["e"] = bench_latency(bench, 30)
        if "p" in args.only:
            say(f"profiling run_due over {args.profile_n:,} executions -> {PROFILE_PATH}")
            prof = profile_e2e(bench, args.profile_n)
            say(prof[: prof.find("==== database threads")].rstrip())
        if "r" in args.only or "w" in args.only:
            run_real_parts(bench, args.only, args.real_n, args.profile_real_n, runs, res)
        if "t" in args.only:
            say(f"(t) run_due, {n:,} executions: linear 2-step vs the same path by transitions")
            res["t"] = bench_transitions(bench, n, runs)
            t = res["t"]
            say(
                f"(t) linear {t['linear']:,.0f}/s, transitions {t['transitions']:,.0f}/s: "
                f"{t['ratio']:.0%} of linear (target >= 90 %)"
            )
    finally:
        bench.cleanup()

    if "c" in res:
        plan = res["c"]["plan"]  # printed after (d), which shows the join on a real table
        say(f"(c) EXPLAIN of the claim with {big:,} future rows:")
        for line in plan:
            say("    " + line)
        uses = [ln.strip() for ln in plan if "ix_step_executions_due" in ln]
        seq = [ln.strip() for ln in plan if "Seq Scan on step_executions" in ln]
        others = [ln.strip() for ln in plan if "Seq Scan" in ln and ln.strip() not in seq]
        res["c"]["plan_ok"] = bool(uses) and not seq
        say(f"    -> index line: {uses[0] if uses else 'NONE'}")
        say(f"    -> Seq Scan on step_executions: {'YES' if seq else 'no'}")
        if others:
            say(
                f"    -> also {'; '.join(others)} (enrollments holds 1 analysed row here; with"
                " 20k enrollments, in (d), the join reads enrollments by "
                f"{res.get('d', {}).get('enrollments_access', 'n/a (run d)')})"
            )

    rows: list[tuple[str, str, str, str, str, bool]] = []
    if "a" in res:
        a = res["a"]
        rows.append(
            (
                "(a) enroll_many rows/s vs raw COPY",
                f"{a['ours']:,.0f}",
                f"{a['base']:,.0f}",
                f"{a['ratio']:.2f}",
                ">= 0.5",
                a["ratio"] >= 0.5,
            )
        )
    if "b" in res:
        b = res["b"]
        for face in ("due", "worker"):
            name = "run_due" if face == "due" else "run_worker"
            rows.append(
                (
                    f"(b) {name} exec/s vs bare SKIP LOCKED",
                    f"{b[face]:,.0f}",
                    f"{b['bare']:,.0f}",
                    f"{b[face + '_bare']:.2f}",
                    ">= 0.5",
                    b[face + "_bare"] >= 0.5,
                )
            )
            rows.append(
                (
                    f"(b) {name} exec/s vs pgqueuer 2x100",
                    f"{b[face]:,.0f}",
                    f"{b['pgq']:,.0f}",
                    f"{b[face + '_pgq']:.2f}",
                    ">= 0.9",
                    b[face + "_pgq"] >= 0.9,
                )
            )
        rows.append(
            (
                "(b) run_due, claims of 100, vs bare",
                f"{b['due100']:,.0f}",
                f"{b['bare']:,.0f}",
                f"{b['due100_bare']:.2f}",
                "(info)",
                None,
            )
        )
    if "c" in res:
        c = res["c"]
        rows.append(
            (
                f"(c) claim ms, {big:,} vs 10k future",
                f"{c['large']:.2f}",
                f"{c['small']:.2f}",
                f"{c['ratio']:.2f}",
                "<= 1.2",
                c["ratio"] <= 1.2,
            )
        )
        rows.append(
            (
                "(c) claim plan: ix_step_executions_due, no Seq Scan",
                "yes" if c["plan_ok"] else "no",
                "",
                "",
                "index",
                c["plan_ok"],
            )
        )
    if "d" in res:
        d = res["d"]
        rows.append(
            (
                "(d) run_due/s with 100k future vs none",
                f"{d['some']:,.0f}",
                f"{d['none']:,.0f}",
                f"{d['ratio']:.2f}",
                ">= 0.9",
                d["ratio"] >= 0.9,
            )
        )
    for (shape, c), r in res.get("r", {}).items():
        rows.append(
            (
                f"(r) {shape} c={c} exec/s vs fastest bare",
                f"{r['clients']['DripDrop']['rate']:,.0f}",
                f"{r['clients'][r['fastest']]['rate']:,.0f}",
                f"{r['vs_fastest']:.2f}",
                "(info)",
                None,
            )
        )
    if "e" in res:
        e = res["e"]
        rows.append(
            (
                "(e) enroll->delivered ms, idle worker",
                f"{e['median']:.1f}",
                "",
                "",
                "<= 50",
                e["median"] <= 50,
            )
        )
    if rows:
        head = ("figure", "ours", "baseline", "ratio", "target", "result")
        table = [head, *((r[0], r[1], r[2], r[3], r[4], verdict(r[5])) for r in rows)]
        widths = [max(len(r[i]) for r in table) for i in range(len(head))]
        say(f"\nSummary (medians of {runs} runs; ratio = median of per-run ratios)")
        for k, r in enumerate(table):
            say(
                "  ".join(
                    cell.ljust(w) if i == 0 else cell.rjust(w)
                    for i, (cell, w) in enumerate(zip(r, widths, strict=True))
                )
            )
            if k == 0:
                say("  ".join("-" * w for w in widths))
        if "e" in res:
            e = res["e"]
            say(
                f"(e) p90 {e['p90']:.1f} ms, max {e['max']:.1f} ms; the enroll call itself "
                f"{e['enroll']:.1f} ms"
            )
    say(f"total {time.perf_counter() - t_start:.0f} s")
    return 0 if all(r[5] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
