"""Analytics from rollups: read latency with 10M executions, and what the triggers cost the worker.

Run: ``.venv/bin/python bench/analytics.py [--database-url URL] [--only rt]``. The URL defaults
to ``DRIPDROP_BENCH_DATABASE_URL``, else ``postgresql://postgres@127.0.0.1:5432/test``. Every
part works in fresh schemas (``ddbench_an_*``) dropped at the end, even on failure.

(r) reads: a schema with ``--executions`` (10M) executions, 2 per cent of them still scheduled,
    over ``--days`` (90) days: 20 sequences of 2 versions of 5 steps (email and sms, two memory
    adapters each), 20 % of the enrollments per version... The rows are written with
    ``INSERT … SELECT generate_series`` (triggers and foreign-key checks off, as a restore would),
    then ``dd.rebuild_analytics()`` fills the rollups from them (timed). Then p50/p95 of
    ``sequence_analytics`` (default 30 days, and the whole 90 days), ``adapter_health``
    (24 h) and of their REST endpoints (``GET /api/v1/sequences/{id}/analytics`` and
    ``/api/v1/adapters/health`` on a real uvicorn server on 127.0.0.1, keep-alive) and of the
    dashboard's pages that show them (``/analytics``, ``/adapters``), each over
    ``--samples`` calls rotating through the sequences. Target: ≤ 100 ms each.
(t) the triggers' cost on the worker: ``run_due`` draining ``--n`` immediate executions of a
    2-step sequence (as ``bench/dispatch.py`` part b: memory provider, claims of 500, the
    delayed second step scheduled), with the analytics triggers enabled and disabled
    (``ALTER TABLE … DISABLE TRIGGER``) on the same database, alternating, ``--runs`` each;
    prints the median executions/s of each and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from dripdrop import DripDrop
from dripdrop.channels.providers.dev import DEFAULT_OUTBOX
from dripdrop.crypto import generate_key

TRIGGERS = {
    "step_executions": ["analytics_executions_updated"],
    "enrollments": ["analytics_enrollments_inserted", "analytics_enrollments_updated"],
}


def say(msg: str) -> None:
    print(msg, flush=True)


def plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn: Callable[[], Any], samples: int, warm: int = 3) -> tuple[float, float]:
    """(p50, p95) in ms of ``fn`` over ``samples`` calls after ``warm`` unmeasured ones."""
    for _ in range(warm):
        fn()
    ms = []
    for _ in range(samples):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    return pct(ms, 0.5), pct(ms, 0.95)


class Bench:
    """The schemas of this run, dropped at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dsn = plain(url)
        self.tag = uuid.uuid4().hex[:6]
        self.instances: list[DripDrop] = []

    def new_dd(self, part: str) -> DripDrop:
        dd = DripDrop(
            self.url,
            schema=f"ddbench_an_{self.tag}_{part}_{len(self.instances)}",
            encryption_key=generate_key(),
        )
        self.instances.append(dd)
        dd.setup()
        return dd

    def sql(self, statement: str, **params: Any) -> list[Any]:
        with psycopg.connect(self.dsn, autocommit=True) as c, c.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def cleanup(self) -> None:
        for dd in self.instances:
            with contextlib.suppress(Exception):
                dd.close()
            with contextlib.suppress(Exception):
                self.sql(f'DROP SCHEMA IF EXISTS "{dd.schema}" CASCADE')


# --------------------------------------------------------------------------- (r) reads


def build(bench: Bench, executions: int, days: int) -> tuple[DripDrop, list[Any]]:
    """Definitions through the API, then enrollments and executions straight in SQL."""
    dd = bench.new_dd("r")
    adapters = {
        ch: [
            dd.create_channel_adapter(name=f"{ch}-{i}", channel=ch, provider="memory")
            for i in range(2)
        ]
        for ch in ("email", "sms")
    }
    rows = []  # (version n, version id, sequence id, position, step id, channel, adapter id)
    sequences = []
    n = 0
    for s in range(20):
        seq = dd.create_sequence(name=f"S{s}", key=f"s{s}")
        sequences.append(seq)
        for v in range(2):
            version = dd.create_sequence_version(seq.id, active=v == 1)
            for p in range(5):
                ch = "email" if p % 2 == 0 else "sms"
                config = {"subject": "s", "body": "b"} if ch == "email" else {"body": "b"}
                step = dd.create_step(version.id, name=f"step {p}", channel=ch, config=config)
                adapter = adapters[ch][(s + p) % 2]
                rows.append((n, version.id, seq.id, p + 1, step.id, ch, adapter.id))
            n += 1
    s = f'"{dd.schema}"'
    versions = n
    enrollments = executions // 5
    start = datetime.now(UTC) - timedelta(days=days)
    with psycopg.connect(bench.dsn, autocommit=True) as c:
        c.execute(
            "CREATE TEMP TABLE m (n int, version_id uuid, sequence_id uuid, pos int, "
            "step_id uuid, channel text, adapter_id uuid)"
        )
        with c.cursor().copy("COPY m FROM STDIN") as cp:
            for r in rows:
                cp.write_row(r)
        c.execute("ANALYZE m")
        c.execute("SET session_replication_role = replica")  # no triggers, no FK checks
        t0 = time.perf_counter()
        c.execute(
            f"""
            INSERT INTO {s}.enrollments (id, sequence_id, sequence_version_id, subscriber_type,
                subscriber_id, state, started_at, completed_at, cancelled_at, exit_reason)
            SELECT lpad(to_hex(i), 32, '0')::uuid, m.sequence_id, m.version_id, 'User', i::text,
                   CASE WHEN i %% 20 = 0 THEN 'cancelled' WHEN i %% 20 < 17 THEN 'completed'
                        ELSE 'active' END,
                   %(start)s + (i::float8 / %(e)s) * %(span)s,
                   CASE WHEN i %% 20 BETWEEN 1 AND 16
                        THEN %(start)s + (i::float8 / %(e)s) * %(span)s + interval '5 days' END,
                   CASE WHEN i %% 20 = 0
                        THEN %(start)s + (i::float8 / %(e)s) * %(span)s + interval '2 days' END,
                   CASE WHEN i %% 20 = 0 THEN 'unenrolled'
                        WHEN i %% 20 BETWEEN 1 AND 16 THEN 'completed' END
            FROM generate_series(1, %(e)s) AS i JOIN m ON m.n = i %% %(v)s AND m.pos = 1
            """,
            {"start": start, "e": enrollments, "span": timedelta(days=days - 6), "v": versions},
        )
        say(f"  {enrollments:,} enrollments in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        c.execute(
            f"""
            INSERT INTO {s}.step_executions (id, enrollment_id, step_id, state, scheduled_for,
                executed_at, failed_at, retry_count, channel, idempotency_key, adapter_id,
                delivery_ms, updated_at)
            SELECT x.id, x.eid, m.step_id, x.state, x.at,
                   CASE WHEN x.state IN ('sent', 'failed', 'skipped') THEN x.at END,
                   CASE WHEN x.state = 'failed' THEN x.at END,
                   CASE WHEN x.state = 'failed' THEN 3 WHEN x.r < 0.05 THEN 1 ELSE 0 END,
                   m.channel, x.id::text,
                   CASE WHEN x.state <> 'skipped' THEN m.adapter_id END,
                   CASE WHEN x.state = 'sent' THEN (20 + 400 * x.r * x.r)::int END, x.at
            FROM (
                SELECT lpad(to_hex(i * 8 + p), 31, '0') AS h, i, p, random() AS r,
                       lpad(to_hex(i), 32, '0')::uuid AS eid,
                       %(start)s + (i::float8 / %(e)s) * %(span)s + (p - 1) * interval '1 day'
                           AS at
                FROM generate_series(1, %(e)s) AS i, generate_series(1, 5) AS p
            ) AS y
            CROSS JOIN LATERAL (
                SELECT ('f' || y.h)::uuid AS id, y.eid, y.r, y.at,
                       CASE WHEN y.r < 0.80 THEN 'sent' WHEN y.r < 0.88 THEN 'skipped'
                            WHEN y.r < 0.92 THEN 'failed' WHEN y.r < 0.98 THEN 'cancelled'
                            ELSE 'scheduled' END AS state
            ) AS x
            JOIN m ON m.n = y.i %% %(v)s AND m.pos = y.p
            """,
            {"start": start, "e": enrollments, "span": timedelta(days=days - 6), "v": versions},
        )
        say(f"  {enrollments * 5:,} executions in {time.perf_counter() - t0:.0f} s")
        c.execute("RESET session_replication_role")
        t0 = time.perf_counter()
        written = dd.rebuild_analytics()
        say(f"  rebuild_analytics(): {written:,} hourly rows in {time.perf_counter() - t0:.0f} s")
        c.execute(f"VACUUM ANALYZE {s}.analytics_hourly")
        size = c.execute(
            f"SELECT pg_size_pretty(pg_total_relation_size('{s}.step_executions')), "
            f"pg_size_pretty(pg_total_relation_size('{s}.analytics_hourly'))"
        ).fetchone()
        say(f"  step_executions {size[0]}, analytics_hourly {size[1]}")
    return dd, sequences


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(dd: DripDrop) -> tuple[int, Callable[[], None]]:
    """The web app on a real uvicorn server on 127.0.0.1 (its own thread)."""
    import uvicorn

    from dripdrop.web import create_app

    port = free_port()
    server = uvicorn.Server(
        # The dashboard's pages are timed too: a host check that lets the bench in stands in for
        # the sign-in (API calls still send their key).
        uvicorn.Config(
            create_app(dd, authorize=lambda request: True),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return port, stop


def bench_reads(bench: Bench, executions: int, days: int, samples: int) -> dict[str, Any]:
    say(f"(r) building {executions:,} executions over {days} days")
    dd, sequences = build(bench, executions, days)
    out: dict[str, Any] = {}
    turn = iter(range(10**9))

    def one(**kw: Any) -> Callable[[], Any]:
        return lambda: dd.sequence_analytics(sequences[next(turn) % len(sequences)].id, **kw)

    now = datetime.now(UTC)
    out["sequence_analytics 30 d"] = timed(one(), samples)
    out[f"sequence_analytics {days} d"] = timed(one(since=now - timedelta(days=days)), samples)
    out["adapter_health 24 h"] = timed(lambda: dd.adapter_health(), samples)
    key = dd.create_api_key("bench", scopes=["read"]).secret
    port, stop = serve(dd)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"Authorization": f"Bearer {key}"}

        def get(path: str) -> Callable[[], Any]:
            def call() -> Any:
                target = path.format(id=sequences[next(turn) % len(sequences)].id)
                conn.request("GET", target, headers=headers)
                response = conn.getresponse()
                body = response.read()
                assert response.status == 200, body[:300]
                return json.loads(body)

            return call

        out["REST /sequences/{id}/analytics"] = timed(
            get("/api/v1/sequences/{id}/analytics"), samples
        )
        out["REST /adapters/health"] = timed(get("/api/v1/adapters/health"), samples)

        def page(path: str) -> Callable[[], Any]:
            def call() -> Any:
                conn.request("GET", path.format(id=sequences[next(turn) % len(sequences)].id))
                response = conn.getresponse()
                body = response.read()
                assert response.status == 200 and b"</html>" in body, body[:300]
                return body

            return call

        out["page /analytics (30 d)"] = timed(page("/analytics?sequence={id}"), samples)
        out[f"page /analytics ({days} d)"] = timed(
            page(f"/analytics?sequence={{id}}&range={days}d"), samples
        )
        out["page /adapters (health 24 h)"] = timed(page("/adapters"), samples)
        sample = get("/api/v1/sequences/{id}/analytics")()
        say(
            f"  a sample answer: enrolled {sample['enrolled']:,}, steps "
            f"{[s['sent'] for s in sample['steps']]} sent, providers "
            f"{[(p['adapter_name'], p['p50_ms'], p['p95_ms']) for p in sample['providers']]}"
        )
        conn.close()
    finally:
        stop()
    for label, (p50, p95) in out.items():
        say(f"  {label:<36} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
    return out


# --------------------------------------------------------------------------- (t) triggers


def set_triggers(bench: Bench, dd: DripDrop, enabled: bool) -> None:
    verb = "ENABLE" if enabled else "DISABLE"
    for table, names in TRIGGERS.items():
        for name in names:
            bench.sql(f'ALTER TABLE "{dd.schema}".{table} {verb} TRIGGER {name}')


def drain(bench: Bench, n: int, triggers: bool) -> float:
    """Executions/s of ``run_due`` over ``n`` immediate executions (fresh schema)."""
    dd = bench.new_dd("t")
    seq = dd.create_sequence(name="B", key="b")
    version = dd.create_sequence_version(seq.id, active=True)
    dd.create_channel_adapter(name="mem", channel="email", provider="memory")
    config = {"subject": "Hello {{ name }}", "body": "<p>Hi {{ name }}</p>"}
    dd.create_step(version.id, name="a", channel="email", config=config)
    dd.create_step(
        version.id,
        name="b",
        channel="email",
        config=config,
        timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"},
    )
    set_triggers(bench, dd, triggers)
    people = (
        {"subscriber": {"type": "User", "id": i}, "data": {"name": f"U{i}", "email": f"u{i}@x.io"}}
        for i in range(n)
    )
    assert dd.enroll_many("b", people) == n
    bench.sql(f'VACUUM ANALYZE "{dd.schema}".step_executions')
    bench.sql(f'VACUUM ANALYZE "{dd.schema}".enrollments')
    DEFAULT_OUTBOX.clear()
    t0 = time.perf_counter()
    summary = dd.run_due()
    elapsed = time.perf_counter() - t0
    assert summary.sent == n, summary
    DEFAULT_OUTBOX.clear()
    if triggers:
        got = dd.sequence_analytics("b")
        assert got.steps[0].sent == n, got.steps[0]
    dd.close()
    bench.instances.remove(dd)
    bench.sql(f'DROP SCHEMA "{dd.schema}" CASCADE')
    return n / elapsed


def bench_triggers(bench: Bench, n: int, runs: int) -> dict[str, Any]:
    say(f"(t) run_due over {n:,} executions, analytics triggers on vs off, {runs} runs each")
    on: list[float] = []
    off: list[float] = []
    ratios = []
    for i in range(runs):
        first, second = (True, False) if i % 2 == 0 else (False, True)
        a = drain(bench, n, first)
        b = drain(bench, n, second)
        with_t, without = (a, b) if first else (b, a)
        on.append(with_t)
        off.append(without)
        ratios.append(with_t / without)
        say(f"  run {i + 1}: on {with_t:,.0f}/s, off {without:,.0f}/s")
    result = {
        "on": statistics.median(on),
        "off": statistics.median(off),
        "ratio": statistics.median(ratios),
    }
    say(
        f"  median: on {result['on']:,.0f}/s, off {result['off']:,.0f}/s, "
        f"on/off {result['ratio']:.3f}"
    )
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--database-url",
        default=os.environ.get(
            "DRIPDROP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    ap.add_argument("--only", default="rt", help="parts to run: r (reads), t (trigger cost)")
    ap.add_argument("--executions", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--n", type=int, default=20_000, help="executions per drain in (t)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the schemas (to look at them)")
    args = ap.parse_args()
    bench = Bench(args.database_url)
    try:
        if "t" in args.only:
            bench_triggers(bench, args.n, args.runs)
        if "r" in args.only:
            bench_reads(bench, args.executions, args.days, args.samples)
    finally:
        if args.keep:
            say(f"kept: {[dd.schema for dd in bench.instances]}")
        else:
            bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
