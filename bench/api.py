"""REST API throughput and latency, beside a minimal endpoint on the same server.

Run: ``.venv/bin/python bench/api.py [--database-url URL] [--n 3000] [--runs 3]``. One uvicorn
process (its own, on 127.0.0.1) serves both:

* ``POST /api/v1/enrollments`` — DripDrop's app (``create_app``) with an API key: auth,
  validation, the enrollment and its first execution;
* ``POST /baseline/enrollments`` — a minimal FastAPI endpoint added to the same app (so both pass
  the same middleware) doing one plain INSERT of the same JSON into a one-table schema with the
  same driver (psycopg through a SQLAlchemy pool).

A client (httpx2, 32 keep-alive connections, 32 requests in flight) posts N requests to each,
alternating which goes first; rates and p50/p99 latencies are medians over the runs, the ratio
the median of per-run ratios (target ≥ 0.7).

Then ``GET /api/v1/executions?state=failed&limit=50`` with ``--executions`` (1,000,000) rows in
``step_executions`` (5 % failed, spread over time): p50/p95 over 200 requests (target p95 ≤ 50 ms)
and the query's EXPLAIN.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

from fastapi import Request  # at module level: the endpoints' string annotations resolve here

DEFAULT_URL = os.environ.get(
    "DRIPDROP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def make_app() -> Any:
    """The server's app (uvicorn --factory): DripDrop's, with the baseline endpoint added."""
    from sqlalchemy import create_engine, text

    from dripdrop import DripDrop
    from dripdrop.web import create_app

    url, schema = os.environ["BENCH_DATABASE_URL"], os.environ["BENCH_SCHEMA"]
    # The same pool on both sides: 32 requests in flight, one connection each.
    pool = {"pool_size": 32, "max_overflow": 8}
    dd = DripDrop(url, schema=schema, encryption_key=os.environ["BENCH_KEY"], engine_options=pool)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), **pool)
    app = create_app(dd)
    insert = text(f'INSERT INTO "{schema}_plain".items (body) VALUES (CAST(:body AS jsonb))')

    @app.post("/baseline/enrollments", status_code=201)
    async def baseline(request: Request) -> dict[str, Any]:
        body = (await request.body()).decode()

        def write() -> None:
            with engine.begin() as conn:
                conn.execute(insert, {"body": body})

        from fastapi.concurrency import run_in_threadpool

        await run_in_threadpool(write)
        return {"ok": True}

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin(url: str) -> Any:
    from sqlalchemy import create_engine

    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def prepare(url: str, schema: str, key: str) -> tuple[Any, str]:
    """A DripDrop schema with a sequence ``b`` (one delayed email step) and an API key; the
    baseline's one-table schema."""
    from sqlalchemy import text

    from dripdrop import DripDrop

    dd = DripDrop(url, schema=schema, encryption_key=key)
    dd.setup()
    seq = dd.create_sequence(name="B", key="b")
    version = dd.create_sequence_version(seq.id, active=True)
    dd.create_channel_adapter(name="mem", channel="email", provider="memory")
    dd.create_step(
        version.id,
        name="a",
        channel="email",
        timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"},
        config={"subject": "Hi {{ name }}", "body": "Welcome"},
    )
    token = dd.create_api_key("bench", scopes=["admin"]).secret
    with dd.runtime.engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}_plain"'))
        conn.execute(
            text(
                f'CREATE TABLE "{schema}_plain".items '
                "(id bigserial PRIMARY KEY, body jsonb NOT NULL, "
                "inserted_at timestamptz NOT NULL DEFAULT now())"
            )
        )
    return dd, token


def serve(url: str, schema: str, key: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "BENCH_DATABASE_URL": url,
        "BENCH_SCHEMA": schema,
        "BENCH_KEY": key,
        "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), *sys.path]),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api:make_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    import httpx2

    for _ in range(200):
        try:
            if httpx2.get(base + "/health", timeout=1).status_code == 200:
                return process, base
        except httpx2.HTTPError:
            pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the server did not start")


async def post_all(
    base: str, path: str, headers: dict[str, str], n: int, run: str
) -> tuple[float, list[float]]:
    """N POSTs, 32 in flight over 32 connections; (requests/s, latencies in ms)."""
    import httpx2

    limits = httpx2.Limits(max_connections=32, max_keepalive_connections=32)
    latencies: list[float] = []
    async with httpx2.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            body = {
                "sequence_key": "b",
                "subscriber": {"type": "User", "id": f"{run}-{i}"},
                "data": {"name": f"User {i}", "email": f"u{i}@example.com"},
            }
            async with sem:
                t0 = time.perf_counter()
                response = await client.post(path, json=body, headers=headers)
                latencies.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 201:
                raise RuntimeError(f"{path}: HTTP {response.status_code} {response.text[:200]}")

        await one(-1)  # warm the connection
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - started), latencies


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) the server process has used: a figure that, unlike rates,
    barely moves when other work shares the machine."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fill_executions(dd: Any, count: int) -> None:
    """``count`` finished executions (5 % failed) over 10,000 enrollments, spread over a year."""
    from sqlalchemy import text

    s = f'"{dd.schema}"'
    step = f"(SELECT id FROM {s}.steps LIMIT 1)"
    with dd.runtime.engine.begin() as conn:
        conn.execute(
            text(f"""
            INSERT INTO {s}.enrollments (id, sequence_id, sequence_version_id, subscriber_type,
                subscriber_id, state, started_at, data)
            SELECT gen_random_uuid(), v.sequence_id, v.id, 'Filler', g::text, 'completed',
                now() - interval '1 year', '{{}}'
            FROM generate_series(1, 10000) g, (SELECT * FROM {s}.sequence_versions LIMIT 1) v
        """)
        )
        conn.execute(
            text(f"""
            INSERT INTO {s}.step_executions (id, enrollment_id, step_id, state, scheduled_for,
                executed_at, failed_at, channel, idempotency_key, error_message, inserted_at)
            SELECT gen_random_uuid(), e.id, {step},
                CASE WHEN g % 20 = 0 THEN 'failed' ELSE 'sent' END,
                now() - (g || ' seconds')::interval * 30, now() - (g || ' seconds')::interval * 30,
                CASE WHEN g % 20 = 0 THEN now() - (g || ' seconds')::interval * 30 END,
                'email', g::text, CASE WHEN g % 20 = 0 THEN 'HTTP 503' END,
                now() - (g || ' seconds')::interval * 30
            FROM generate_series(1, :count) g
            JOIN LATERAL (SELECT id FROM {s}.enrollments WHERE subscriber_type = 'Filler'
                          AND subscriber_id = (g % 10000 + 1)::text) e ON true
        """),
            {"count": count},
        )
        conn.execute(text(f"ANALYZE {s}.step_executions"))


async def get_failed(base: str, headers: dict[str, str], n: int) -> list[float]:
    import httpx2

    latencies: list[float] = []
    async with httpx2.AsyncClient(base_url=base, timeout=30) as client:
        for i in range(n + 5):
            t0 = time.perf_counter()
            response = await client.get(
                "/api/v1/executions", params={"state": "failed", "limit": 50}, headers=headers
            )
            if i >= 5:  # the first few warm caches
                latencies.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"executions: HTTP {response.status_code} {response.text[:200]}")
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--executions", type=int, default=1_000_000)
    args = parser.parse_args()
    from sqlalchemy import text

    from dripdrop.crypto import generate_key

    schema, key = f"ddapi_{uuid.uuid4().hex[:8]}", generate_key()
    dd, token = prepare(args.database_url, schema, key)
    process, base = serve(args.database_url, schema, key)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        ours, plain, ratios, p99s = [], [], [], []
        cpu: dict[str, list[float]] = {"dd": [], "plain": []}
        for run in range(args.runs):
            order = [("dd", "/api/v1/enrollments"), ("plain", "/baseline/enrollments")]
            got: dict[str, tuple[float, list[float]]] = {}
            for name, path in order if run % 2 == 0 else order[::-1]:
                before = server_cpu(process.pid)
                got[name] = asyncio.run(post_all(base, path, headers, args.n, f"{run}{name}"))
                cpu[name].append((server_cpu(process.pid) - before) * 1000 / args.n)
            ours.append(got["dd"])
            plain.append(got["plain"])
            ratios.append(got["dd"][0] / got["plain"][0])
            p99s.append((pct(got["dd"][1], 0.99), pct(got["plain"][1], 0.99)))
            print(
                f"run {run + 1}: POST /enrollments {got['dd'][0]:,.0f}/s, plain INSERT "
                f"{got['plain'][0]:,.0f}/s, ratio {ratios[-1]:.2f}; server CPU "
                f"{cpu['dd'][-1]:.2f} vs {cpu['plain'][-1]:.2f} ms/request",
                flush=True,
            )
        print(
            f"POST /api/v1/enrollments: {statistics.median(r for r, _ in ours):,.0f}/s "
            f"(p50 {statistics.median(pct(lat, 0.5) for _, lat in ours):.1f} ms, "
            f"p99 {statistics.median(p for p, _ in p99s):.1f} ms); plain INSERT endpoint "
            f"{statistics.median(r for r, _ in plain):,.0f}/s "
            f"(p99 {statistics.median(p for _, p in p99s):.1f} ms); "
            f"ratio {statistics.median(ratios):.2f} (target ≥ 0.70); server CPU per request "
            f"{statistics.median(cpu['dd']):.2f} ms vs {statistics.median(cpu['plain']):.2f} ms"
        )
        print(f"filling step_executions with {args.executions:,} rows ...", flush=True)
        fill_executions(dd, args.executions)
        latencies = asyncio.run(get_failed(base, headers, 200))
        print(
            f"GET /api/v1/executions?state=failed&limit=50 with {args.executions:,} executions: "
            f"p50 {pct(latencies, 0.5):.1f} ms, p95 {pct(latencies, 0.95):.1f} ms "
            "(target p95 ≤ 50 ms)"
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
        with dd.runtime.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}_plain" CASCADE'))
        dd.close()


if __name__ == "__main__":
    main()
