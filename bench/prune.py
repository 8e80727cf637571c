"""Does pruning history slow the hot path? Claim latency and dispatch throughput with and
without a prune running, over a table of millions of finished executions.

Run: ``.venv/bin/python bench/prune.py [--rows 20000000] [--database-url URL]``. The URL
defaults to ``DRIPDROP_BENCH_DATABASE_URL``, else ``postgresql://postgres@127.0.0.1:5432/test``.
Works in a fresh schema (``ddbench_prune``) dropped at the end (``--keep`` keeps it).

1. Builds ``--rows`` finished (``sent``) executions 400 days old with ``generate_series``
   (time-ordered ids, like the worker's), in chunks of a million, indexes built after the load.
2. Alternates ``--rounds`` times (idle, then pruning, then the control):
   - claim latency: ``--claims`` claims of 100 due rows (statement + commit, each set back
     after, as bench/dispatch.py part c), p50 and p99;
   - dispatch: ``run_due`` draining ``--drain`` fresh enrollments of a 2-step sequence (memory
     provider), executions/s;
   with, in the "pruning" phases, ``prune(older_than=90 days)`` running in another process
   (as on another machine), default batch size and pause. Its rows removed per second are
   reported. In the "burner" phases (the control), a process that touches no database uses
   the CPU the way the pruner does (2 ms at a time, resting ``--rest-factor`` times as long).
3. Prints the medians and the ratios pruning/idle.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dripdrop import DripDrop  # noqa: E402
from dripdrop.crypto import generate_key  # noqa: E402
from dripdrop.ops import retention  # noqa: E402
from dripdrop.worker.queries import CLAIM, q  # noqa: E402

SCHEMA = "ddbench_prune"
RUN = uuid.uuid4().hex[:8]  # subscribers of this run's drains are new even with --reuse
CHUNK = 1_000_000

LOAD = """
INSERT INTO {s}.step_executions (id, enrollment_id, step_id, state, scheduled_for, executed_at,
    retry_count, channel, recipient, payload, response, idempotency_key, held, inserted_at,
    updated_at)
SELECT CAST(lpad(to_hex(:base_ms + g / 50), 12, '0') || '7000' || '8' || lpad(to_hex(g), 15, '0')
            AS uuid),
       e.id, :step, 'sent', t.ts, t.ts, 0, 'email', 'user' || g || '@example.com',
       '{{"subject": "Welcome", "body": "Hello there"}}',
       '{{"provider": "memory", "status": "sent"}}',
       g::text, false, t.ts, t.ts
FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g
JOIN bench_enrollments AS e ON e.n = g % 1000
CROSS JOIN LATERAL (SELECT to_timestamp((:base_ms + g / 50) / 1000.0) AS ts) AS t
"""

DUE = """
INSERT INTO {s}.step_executions (id, enrollment_id, step_id, state, scheduled_for, channel,
    idempotency_key, held)
SELECT gen_random_uuid(), :enrollment, :step, 'scheduled', now() + interval '30 days', 'email',
       gen_random_uuid()::text, false
FROM generate_series(1, 100)
"""
SET_BACK = """
UPDATE {s}.step_executions SET lease_token = NULL, locked_by = NULL, locked_until = NULL
WHERE id = ANY(:ids)
"""

PRUNER = """
import sys, time
from datetime import timedelta
from dripdrop import DripDrop
from dripdrop.ops.retention import prune
dd = DripDrop(sys.argv[1], schema=sys.argv[2])
start = time.monotonic()
def progress(table, n):
    print(table, n, round(time.monotonic() - start, 3), flush=True)
from dripdrop.ops import retention
retention.REST_FACTOR = float(sys.argv[4])
prune(dd.runtime, timedelta(days=90), progress=progress, wait_for_lock=True,
      batch_size=int(sys.argv[3]))
print("done", flush=True)
"""


def say(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", flush=True)


def build(dd: DripDrop, rows: int) -> tuple[Any, Any]:
    """The history (``rows`` old finished executions) and 100 due rows for claim probes."""
    s = f'"{dd.schema}"'
    seq = dd.create_sequence(name="Bench", key="bench")
    version = dd.create_sequence_version(seq.id, active=True)
    dd.create_channel_adapter(name="mem", channel="email", provider="memory", is_default=True)
    first = dd.create_step(
        version.id, name="a", channel="email", config={"subject": "a", "body": "b"}
    )
    dd.create_step(
        version.id,
        name="b",
        channel="email",
        timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"},
        config={"subject": "b", "body": "c"},
    )
    base_ms = int((datetime.now(UTC) - timedelta(days=400)).timestamp() * 1000)
    with dd.runtime.engine.begin() as c:
        c.execute(text(f"DROP INDEX {s}.ix_step_executions_enrollment"))
        c.execute(text(f"DROP INDEX {s}.ix_step_executions_step"))
        c.execute(
            text(
                "CREATE UNLOGGED TABLE bench_enrollments AS SELECT n, gen_random_uuid() AS id "
                "FROM generate_series(0, 999) AS n"
            )
        )
        c.execute(
            text(
                f"INSERT INTO {s}.enrollments (id, sequence_id, sequence_version_id, "
                f"subscriber_type, "
                f"subscriber_id, state, started_at, completed_at) "
                f"SELECT id, :seq, :version, 'Old', n::text, 'completed', "
                f"now() - interval '400 days', "
                f"now() - interval '399 days' FROM bench_enrollments"
            ),
            {"seq": seq.id, "version": version.id},
        )
    t0 = time.perf_counter()
    for lo in range(0, rows, CHUNK):
        hi = min(rows, lo + CHUNK) - 1
        with dd.runtime.engine.begin() as c:
            c.execute(text("SET LOCAL synchronous_commit TO OFF"))
            c.execute(
                text(LOAD.format(s=s)), {"base_ms": base_ms, "step": first.id, "lo": lo, "hi": hi}
            )
        say(f"loaded {hi + 1:,} rows ({(hi + 1) / (time.perf_counter() - t0):,.0f} rows/s)")
    with dd.runtime.engine.begin() as c:
        c.execute(
            text(
                f"CREATE INDEX ix_step_executions_enrollment ON {s}.step_executions "
                "(enrollment_id, scheduled_for)"
            )
        )
        c.execute(text(f"CREATE INDEX ix_step_executions_step ON {s}.step_executions (step_id)"))
        c.execute(text("DROP TABLE bench_enrollments"))
        probe = c.execute(
            text(
                f"INSERT INTO {s}.enrollments (id, sequence_id, sequence_version_id, "
                f"subscriber_type, "
                f"subscriber_id, state, started_at) VALUES (gen_random_uuid(), :seq, :version, "
                f"'Probe', 'p', 'paused', now()) RETURNING id"
            ),
            {"seq": seq.id, "version": version.id},
        ).scalar()
        c.execute(text(DUE.format(s=s)), {"enrollment": probe, "step": first.id})
    vacuum(dd)
    say(f"built {rows:,} finished executions in {time.perf_counter() - t0:,.0f} s")
    return probe, first.id


def vacuum(dd: DripDrop) -> None:
    engine = dd.runtime.engine.execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(text(f'VACUUM ANALYZE "{dd.schema}".step_executions'))
        c.execute(text(f'VACUUM ANALYZE "{dd.schema}".enrollments'))
        c.execute(text("CHECKPOINT"))


PHASES = ("idle", "pruning", "burner")
BURN_MS = 2.0  # about one prune batch's time
# The control: the pruner's share of a core (a batch's time, then REST_FACTOR times as long at
# rest), spent by a process that touches no database. On a 2-core machine any such process
# costs the claim's p99 what it costs: the scheduler, not the prune.
BURNER = f"""
import sys, time
rest = float(sys.argv[1]) * {BURN_MS} / 1000
print("burning", flush=True)
while True:
    t = time.perf_counter()
    while time.perf_counter() - t < {BURN_MS} / 1000:
        pass
    time.sleep(rest)
"""


def claim_latencies(dd: DripDrop, claims: int) -> list[float]:
    """Milliseconds per claim of 100 due rows (statement + commit), each set back after. On the
    worker's own engine, as the worker claims: its commits do not wait for the WAL flush (which
    would also wait for the WAL a prune just wrote)."""
    claim, back = q(CLAIM, dd.schema), text(SET_BACK.format(s=f'"{dd.schema}"'))
    times = []
    with dd.runtime.worker_engine.connect() as c:
        for k in range(claims + 5):
            params = {  # a month ahead: due rows no run_due of this bench ever claims
                "now": datetime.now(UTC) + timedelta(days=31),
                "limit": 100,
                "token": uuid.uuid4(),
                "worker": "bench",
                "lease": 120.0,
            }
            t0 = time.perf_counter()
            with c.begin():
                ids = [r.id for r in c.execute(claim, params)]
            elapsed = time.perf_counter() - t0
            assert len(ids) == 100, len(ids)
            with c.begin():
                c.execute(back, {"ids": ids})
            if k >= 5:
                times.append(elapsed * 1000)
    return times


def drain_rate(dd: DripDrop, n: int, round_no: int, phase: str) -> float:
    """Executions/s of ``run_due`` over ``n`` fresh immediate executions."""
    dd.enroll_many(
        "bench",
        (
            {
                "subscriber": {"type": f"{phase}{round_no}{RUN}", "id": i},
                "data": {"email": f"u{i}@x.io"},
            }
            for i in range(n)
        ),
    )
    t0 = time.perf_counter()
    summary = dd.run_due()
    elapsed = time.perf_counter() - t0
    assert summary.sent == n, summary
    return n / elapsed


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "DRIPDROP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--claims", type=int, default=300)
    parser.add_argument("--drain", type=int, default=20_000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--reuse", action="store_true", help="the schema a --keep run left: no rebuilding"
    )
    parser.add_argument("--batch-size", type=int, default=retention.BATCH_SIZE)
    parser.add_argument("--rest-factor", type=float, default=retention.REST_FACTOR)
    args = parser.parse_args()

    dd = DripDrop(args.database_url, schema=SCHEMA, encryption_key=generate_key())
    if not args.reuse:
        with dd.runtime.engine.begin() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
    dd.setup()
    results: dict[str, dict[str, list[float]]] = {
        phase: {"claims": [], "rates": []} for phase in PHASES
    }
    pruned: list[tuple[int, float]] = []
    try:
        if not args.reuse:
            build(dd, args.rows)
        for r in range(args.rounds):
            for phase in PHASES:
                pruner = None
                if phase == "burner":
                    pruner = subprocess.Popen(
                        [sys.executable, "-c", BURNER, str(args.rest_factor)],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    first = pruner.stdout.readline()
                elif phase == "pruning":
                    pruner = subprocess.Popen(
                        [
                            sys.executable,
                            "-c",
                            PRUNER,
                            args.database_url,
                            SCHEMA,
                            str(args.batch_size),
                            str(args.rest_factor),
                        ],
                        stdout=subprocess.PIPE,
                        text=True,
                        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                    )
                    first = pruner.stdout.readline()  # its first batch is done: it is running
                    assert first, "the pruner did not start"
                t0 = time.perf_counter()
                claims = claim_latencies(dd, args.claims)
                rate = drain_rate(dd, args.drain, r, phase)
                elapsed = time.perf_counter() - t0
                if pruner is not None:
                    pruner.terminate()
                    out = first + pruner.communicate()[0]
                    steps = [
                        line.split()
                        for line in out.splitlines()
                        if line.startswith("step_executions")
                    ]
                    if steps:
                        n, secs = int(steps[-1][1]), float(steps[-1][2])
                        pruned.append((n, secs))
                        say(f"  pruner: {n:,} rows in {secs:.1f} s ({n / secs:,.0f} rows/s)")
                results[phase]["claims"] += claims
                results[phase]["rates"].append(rate)
                say(
                    f"round {r + 1} {phase:>7}: claim p50 {pct(claims, 50):.2f} ms, p99 "
                    f"{pct(claims, 99):.2f} ms; drain {rate:,.0f} exec/s ({elapsed:.0f} s)"
                )
        idle, busy, burner = results["idle"], results["pruning"], results["burner"]
        p99_idle, p99_busy = pct(idle["claims"], 99), pct(busy["claims"], 99)
        rate_idle, rate_busy = statistics.median(idle["rates"]), statistics.median(busy["rates"])
        print()
        print(f"rows of history: {args.rows:,}")
        print(
            f"claim p50 ms  idle {pct(idle['claims'], 50):.2f}  "
            f"pruning {pct(busy['claims'], 50):.2f}"
        )
        print(
            f"claim p99 ms  idle {p99_idle:.2f}  pruning {p99_busy:.2f}  "
            f"ratio {p99_busy / p99_idle:.2f} (goal <= 1.5)"
        )
        print(
            f"drain exec/s  idle {rate_idle:,.0f}  pruning {rate_busy:,.0f}  "
            f"ratio {rate_busy / rate_idle:.2f} (goal >= 0.90)"
        )
        print(
            f"control: a process that only burns CPU {BURN_MS:g} ms at a time, resting "
            f"{args.rest_factor:g}x as long (no database): "
            f"claim p99 {pct(burner['claims'], 99):.2f} "
            f"ms, ratio {pct(burner['claims'], 99) / p99_idle:.2f}; drain ratio "
            f"{statistics.median(burner['rates']) / rate_idle:.2f}"
        )
        if pruned:
            total = sum(n for n, _ in pruned)
            secs = sum(s for _, s in pruned)
            print(
                f"prune rate    {total / secs:,.0f} rows/s while the hot path ran ({total:,} rows)"
            )
    finally:
        if not args.keep:
            with dd.runtime.engine.begin() as c:
                c.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        dd.close()


if __name__ == "__main__":
    main()
