"""The hot queries of the PostgreSQL queue, in one place (checked with EXPLAIN in the tests).

The execution row is the job: ``state = 'scheduled' AND NOT held`` rows are waiting, and the
partial index ``ix_step_executions_due`` holds exactly those, ordered by ``scheduled_for`` — so a
claim costs the same whether the table holds a thousand finished rows or a hundred million.

The claim also returns the ids as text (PostgreSQL formats a UUID far faster than Python's
``str(uuid)``, and every delivery needs both as text).

A claim only stamps a lease (``lease_token``, ``locked_until``) on the row: no indexed column
changes, so PostgreSQL can update it in place (HOT), and a row whose lease has expired — its worker
died — is simply claimable again: recovery needs no separate pass. Records report a leased
scheduled row as ``sending``. Leases use the database's real time (``clock_timestamp()``), never
the injectable clock, which tests move by days.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, text

CLAIM = """
WITH due AS (
    SELECT id FROM {s}.step_executions
    WHERE state = 'scheduled' AND NOT held AND scheduled_for <= :now
      AND (locked_until IS NULL OR locked_until < clock_timestamp())
    ORDER BY scheduled_for
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE {s}.step_executions AS x
    SET lease_token = :token, locked_by = :worker,
        locked_until = clock_timestamp() + make_interval(secs => :lease), updated_at = :now
    FROM due
    WHERE x.id = due.id
    RETURNING x.id, x.enrollment_id, x.step_id, x.scheduled_for, x.retry_count, x.adapter_id,
              x.waiting_for, x.replay_of, x.idempotency_key, x.channel, x.tenant_key
)
SELECT c.*, c.id::text AS id_text, e.id::text AS enrollment_id_text,
       e.sequence_id, e.sequence_version_id, e.subscriber_type, e.subscriber_id,
       e.state AS enrollment_state, e.current_step_id, e.started_at, e.completed_at,
       e.cancelled_at, e.data, e.metadata, e.tenant_key AS enrollment_tenant_key
FROM claimed AS c JOIN {s}.enrollments AS e ON e.id = c.enrollment_id
"""

# The same claim restricted to one enrollment (simulations, which must never touch real work).
CLAIM_ENROLLMENT = CLAIM.replace(
    "WHERE state = 'scheduled' AND NOT held AND scheduled_for <= :now\n",
    "WHERE state = 'scheduled' AND NOT held AND scheduled_for <= :now "
    "AND enrollment_id = :enrollment_id\n",
)

RELEASE = """
UPDATE {s}.step_executions
SET lease_token = NULL, locked_by = NULL, locked_until = NULL
WHERE lease_token = :token AND id = ANY(:ids)
"""

NEXT_DUE = """
SELECT scheduled_for FROM {s}.step_executions
WHERE state = 'scheduled' AND NOT held AND scheduled_for IS NOT NULL
ORDER BY scheduled_for LIMIT 1
"""

# When an idle worker should look again: the first scheduled row no live lease holds (its due
# time, on the engine's clock), and the first lease to run out among the rows ahead of it
# (seconds, on the database's clock). Rows under another worker's lease are due but not
# claimable: without the second answer an idle worker would spin until they are recorded. Only
# the head of the due index is read; beyond it the poll interval keeps the worker correct.
NEXT_WAKE = """
SELECT min(scheduled_for) FILTER (
           WHERE locked_until IS NULL OR locked_until <= clock_timestamp()) AS next_free,
       min(EXTRACT(EPOCH FROM locked_until - clock_timestamp())) FILTER (
           WHERE locked_until > clock_timestamp()) AS lease_left
FROM (
    SELECT scheduled_for, locked_until FROM {s}.step_executions
    WHERE state = 'scheduled' AND NOT held AND scheduled_for IS NOT NULL
    ORDER BY scheduled_for LIMIT 1000
) AS head
"""

# One statement finishes a whole batch: outcomes are written where this worker still holds the
# lease (a late worker's write is a no-op), and only for those the enrollments move on and the
# next executions are inserted. Each step passes its rows on through RETURNING, so no step joins
# back to another (no per-batch quadratic join). A batch row leaves out what is null (and
# ``held`` when false): every key parsed costs the server time.
FINISH = """
WITH v AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(
        id uuid, state text, scheduled_for timestamptz, executed_at timestamptz,
        failed_at timestamptz, retry_count int, recipient text, payload jsonb, response jsonb,
        error_message text, adapter_id uuid, held boolean, action text,
        next_id uuid, next_step_id uuid, next_due timestamptz, next_waiting text,
        next_channel text)
), done AS (
    UPDATE {s}.step_executions AS x
    SET state = v.state, scheduled_for = COALESCE(v.scheduled_for, x.scheduled_for),
        executed_at = v.executed_at, failed_at = v.failed_at, retry_count = v.retry_count,
        recipient = v.recipient, payload = v.payload, response = v.response,
        error_message = v.error_message, adapter_id = v.adapter_id,
        held = COALESCE(v.held, false),
        lease_token = NULL, locked_by = NULL, locked_until = NULL, updated_at = :now
    FROM v JOIN {s}.step_executions AS old ON old.id = v.id
    -- The token test is wrapped so the planner does not take it for a selective one: with next
    -- to no leased rows in its statistics it would expect one row, scan a small table for it
    -- and then walk the whole batch again for each row found.
    WHERE x.id = v.id AND coalesce(x.lease_token = CAST(:token AS uuid), false)
    RETURNING v.*, x.enrollment_id, x.tenant_key, old.state AS previous_state
), moved AS (
    UPDATE {s}.enrollments AS e
    SET current_step_id = CASE WHEN t.action = 'next' THEN t.next_step_id
                               WHEN t.action = 'complete' THEN NULL
                               ELSE e.current_step_id END,
        state = CASE t.action WHEN 'complete' THEN 'completed' WHEN 'halt' THEN 'cancelled'
                ELSE e.state END,
        completed_at = CASE WHEN t.action = 'complete' THEN CAST(:now AS timestamptz)
                       ELSE e.completed_at END,
        cancelled_at = CASE WHEN t.action = 'halt' THEN CAST(:now AS timestamptz)
                       ELSE e.cancelled_at END,
        updated_at = :now
    FROM done AS t
    -- An execution cancelled while it was being sent (unenroll, restart, exit) is still logged
    -- with what really happened, but it no longer moves its enrollment.
    WHERE e.id = t.enrollment_id AND t.action IS NOT NULL AND t.previous_state = 'scheduled'
      AND e.state IN ('active', 'paused')
    RETURNING t.*, e.state AS enrollment_state
), inserted AS (
    INSERT INTO {s}.step_executions (id, enrollment_id, step_id, state, scheduled_for,
        waiting_for, channel, idempotency_key, held, tenant_key)
    SELECT t.next_id, t.enrollment_id, t.next_step_id, 'scheduled', t.next_due, t.next_waiting,
           t.next_channel, t.next_id::text, t.enrollment_state = 'paused', t.tenant_key
    FROM moved AS t
    WHERE t.action = 'next'
    RETURNING id
)
SELECT id FROM done
"""

ENROLLMENTS = """
SELECT id, sequence_id, sequence_version_id, subscriber_type, subscriber_id, state,
       current_step_id, started_at, completed_at, cancelled_at, data, metadata, tenant_key
FROM {s}.enrollments WHERE id = ANY(:ids)
"""

EVENT_COUNTS = """
SELECT enrollment_id, event_key, count(*) AS n, max(occurred_at) AS last
FROM {s}.events WHERE enrollment_id = ANY(:ids) GROUP BY enrollment_id, event_key
"""

EVENTS_OF = """
SELECT enrollment_id, event_key, event_data, occurred_at
FROM {s}.events WHERE enrollment_id = ANY(:ids) ORDER BY occurred_at
"""


_BIND = re.compile(r"(?<![:\w]):(\w+)")


@lru_cache(maxsize=64)
def raw_sql(sql: str, schema: str) -> str:
    """A named query for psycopg directly (``%(name)s`` placeholders), for the hottest paths where
    SQLAlchemy's per-row overhead shows."""
    return _BIND.sub(r"%(\1)s", sql.format(s=f'"{schema}"'))


def q(sql: str, schema: str) -> Any:
    """A named query in this schema (the schema name was validated as an identifier)."""
    return text(sql.format(s=f'"{schema}"'))


def next_due(conn: Connection, schema: str) -> datetime | None:
    return conn.execute(q(NEXT_DUE, schema)).scalar()


def next_wake(conn: Connection, schema: str) -> tuple[datetime | None, float | None]:
    """(first unleased due time, seconds until the first lease ahead of it runs out)."""
    row = conn.execute(q(NEXT_WAKE, schema)).one()
    return row.next_free, None if row.lease_left is None else float(row.lease_left)
