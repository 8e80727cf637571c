"""Would time partitioning of ``step_executions`` help? The claim and retention on a plain table
beside one range-partitioned by month on its time-ordered id.

Run: ``.venv/bin/python bench/partitioning.py [--rows-per-month 50000] [--months 24]``. Works in
a scratch schema (``ddbench_partitioning``), dropped at the end.

Both tables get the same rows: ``--months`` months of history, 98 % finished, 1 % scheduled
and due spread over every month (retries, paused and resumed steps), 1 % scheduled months ahead
(long delays). Measured:

- the claim (100 due rows, ``FOR UPDATE SKIP LOCKED``, as the worker's): buffers read per claim
  (deterministic: independent of the machine's load) and median execution time;
- retention of the oldest month: batched deletes of its finished rows (plain) against moving its
  unfinished rows out, then ``DROP`` of the partition (partitioned).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time

import psycopg

SCHEMA = "ddbench_partitioning"
COLUMNS = """
    id uuid NOT NULL, enrollment_id uuid NOT NULL, state text NOT NULL, held boolean NOT NULL,
    scheduled_for timestamptz, locked_until timestamptz, lease_token uuid, updated_at timestamptz,
    recipient text, payload jsonb
"""
ROWS = """
INSERT INTO {t} SELECT
    CAST(lpad(to_hex(m.ms + g), 12, '0') || '7000' || '8'
         || lpad(to_hex(m.n * 1000000 + g), 15, '0')
         AS uuid),
    gen_random_uuid(),
    CASE WHEN g %% 100 = 0 THEN 'scheduled' ELSE 'sent' END, false,
    CASE WHEN g %% 100 = 0 THEN now() - interval '1 hour' * (g %% 48)
         WHEN g %% 100 = 1 THEN now() + interval '90 days'
         ELSE to_timestamp((m.ms + g) / 1000.0) END,
    NULL, NULL, to_timestamp((m.ms + g) / 1000.0), 'user' || g || '@example.com',
    '{{"subject": "Welcome", "body": "Hello there"}}'
FROM months AS m, generate_series(1, %(per)s) AS g
"""
CLAIM = """
EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT)
SELECT id FROM {t} WHERE state = 'scheduled' AND NOT held AND scheduled_for <= now()
  AND (locked_until IS NULL OR locked_until < clock_timestamp())
ORDER BY scheduled_for LIMIT 100 FOR UPDATE SKIP LOCKED
"""


def uuid7_floor_sql(expr: str) -> str:
    return (
        f"CAST(lpad(to_hex(CAST(extract(epoch FROM {expr}) * 1000 AS bigint)), 12, '0') "
        "|| '70008000000000000000' AS uuid)"
    )


def build(conn: psycopg.Connection, months: int, per: int) -> None:
    conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    conn.execute(f"CREATE SCHEMA {SCHEMA}")
    conn.execute(f"SET search_path TO {SCHEMA}")
    conn.execute(
        "CREATE TABLE months AS SELECT n, "
        "CAST(extract(epoch FROM date_trunc('month', now()) - interval '1 month' * n) * 1000 "
        f"AS bigint) AS ms FROM generate_series(0, {months - 1}) AS n"
    )
    conn.execute(f"CREATE TABLE plain ({COLUMNS}, PRIMARY KEY (id)) WITH (fillfactor = 80)")
    conn.execute(f"CREATE TABLE parted ({COLUMNS}, PRIMARY KEY (id)) PARTITION BY RANGE (id)")
    for n in range(-3, months):  # three months ahead for new rows
        lo = uuid7_floor_sql(f"date_trunc('month', now()) - interval '1 month' * {n}")
        hi = uuid7_floor_sql(f"date_trunc('month', now()) - interval '1 month' * {n - 1}")
        bounds = conn.execute(f"SELECT {lo}, {hi}").fetchone()
        conn.execute(
            f"CREATE TABLE parted_{n + 3:02d} PARTITION OF parted FOR VALUES FROM "
            f"('{bounds[0]}') TO ('{bounds[1]}') WITH (fillfactor = 80)"
        )
    for t in ("plain", "parted"):
        t0 = time.perf_counter()
        conn.execute(ROWS.format(t=t), {"per": per})
        conn.execute(
            f"CREATE INDEX {t}_due ON {t} (scheduled_for) WHERE state = 'scheduled' AND NOT held"
        )
        conn.execute(f"CREATE INDEX {t}_enrollment ON {t} (enrollment_id, scheduled_for)")
        conn.execute(f"ANALYZE {t}")
        print(f"{t}: {months * per:,} rows in {time.perf_counter() - t0:.0f} s", flush=True)


def claim_cost(conn: psycopg.Connection, table: str, runs: int) -> tuple[int, float, int]:
    """(buffers per claim, median ms, index scans in the plan)."""
    times, buffers, scans = [], 0, 0
    for _ in range(runs):
        with conn.transaction(force_rollback=True):
            plan = "\n".join(r[0] for r in conn.execute(CLAIM.format(t=table)))
        times.append(float(re.search(r"Execution Time: ([\d.]+)", plan).group(1)))
        first = plan.splitlines()[0]
        hit = re.search(r"shared hit=(\d+)", plan)
        read = re.search(r"read=(\d+)", plan)
        buffers = (int(hit.group(1)) if hit else 0) + (int(read.group(1)) if read else 0)
        scans = plan.count("Index Scan") + plan.count("Index Only Scan")
        del first
    return buffers, statistics.median(times), scans


def retention(conn: psycopg.Connection, months: int) -> tuple[float, float]:
    """Seconds to clear the oldest month: batched deletes (plain) vs move unfinished + DROP."""
    oldest = f"parted_{months - 1 + 3:02d}"
    lo = conn.execute(f"SELECT id FROM {oldest} ORDER BY id LIMIT 1").fetchone()[0]
    hi = conn.execute(f"SELECT id FROM {oldest} ORDER BY id DESC LIMIT 1").fetchone()[0]
    t0 = time.perf_counter()
    while True:
        n = conn.execute(
            "WITH d AS (SELECT id FROM plain WHERE id >= %s AND id <= %s AND state <> 'scheduled' "
            "LIMIT 1000 FOR UPDATE SKIP LOCKED) DELETE FROM plain USING d WHERE plain.id = d.id",
            (lo, hi),
        ).rowcount
        conn.commit()
        if n == 0:
            break
    deleted = time.perf_counter() - t0
    t0 = time.perf_counter()
    conn.execute(f"ALTER TABLE parted DETACH PARTITION {oldest}")
    conn.execute(f"CREATE TABLE kept AS SELECT * FROM {oldest} WHERE state = 'scheduled'")
    conn.execute(f"DROP TABLE {oldest}")
    conn.commit()
    dropped = time.perf_counter() - t0
    return deleted, dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "DRIPDROP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--rows-per-month", type=int, default=50_000)
    parser.add_argument("--claims", type=int, default=40)
    args = parser.parse_args()
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        try:
            build(conn, args.months, args.rows_per_month)
            conn.autocommit = False
            conn.execute(f"SET search_path TO {SCHEMA}")
            for table in ("plain", "parted"):
                claim_cost(conn, table, 5)  # warm
                buffers, ms, scans = claim_cost(conn, table, args.claims)
                print(
                    f"claim on {table:>6}: {buffers} buffers, {scans} index scan(s), "
                    f"median {ms:.2f} ms",
                    flush=True,
                )
            deleted, dropped = retention(conn, args.months)
            print(
                f"oldest month: batched deletes {deleted:.1f} s; detach + keep unfinished + "
                f"drop {dropped:.2f} s"
            )
        finally:
            conn.rollback()
            conn.autocommit = True
            conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


if __name__ == "__main__":
    main()
