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

_CLAIM = """
WITH due AS (
    -- recovered: a lease ran out (its worker died) and this claim takes the row over (metrics)
    SELECT id, locked_until IS NOT NULL AS recovered FROM {{s}}.step_executions
    WHERE state = 'scheduled' AND NOT held AND scheduled_for <= :now{only_enrollment}
      AND (locked_until IS NULL OR locked_until < clock_timestamp())
    ORDER BY scheduled_for
    LIMIT {limit}
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE {{s}}.step_executions AS x
    SET lease_token = :token, locked_by = :worker,
        locked_until = clock_timestamp() + make_interval(secs => :lease), updated_at = :now
    FROM due
    WHERE x.id = due.id
    RETURNING x.id, x.enrollment_id, x.step_id, x.scheduled_for, x.retry_count, x.adapter_id,
              x.waiting_for, x.replay_of, x.idempotency_key, x.channel, x.tenant_key,
              x.occurrence, due.recovered
)
SELECT c.*, c.id::text AS id_text, e.id::text AS enrollment_id_text,
       e.sequence_id, e.sequence_version_id, e.subscriber_type, e.subscriber_id,
       e.state AS enrollment_state, e.current_step_id, e.started_at, e.completed_at,
       e.cancelled_at, e.data, e.metadata, e.tenant_key AS enrollment_tenant_key
FROM claimed AS c JOIN {{s}}.enrollments AS e ON e.id = c.enrollment_id
"""


def claim_sql(limit: int | None = None, one_enrollment: bool = False) -> str:
    """The claim. ``limit`` writes the batch size into the statement (None binds ``:limit``);
    ``one_enrollment`` restricts it to ``:enrollment_id`` (simulations, which must never touch
    real work)."""
    return _CLAIM.format(
        limit=":limit" if limit is None else int(limit),
        only_enrollment=" AND enrollment_id = :enrollment_id" if one_enrollment else "",
    )


CLAIM = claim_sql()

RELEASE = """
UPDATE {s}.step_executions
SET lease_token = NULL, locked_by = NULL, locked_until = NULL
WHERE id = ANY(CAST(string_to_array(:ids, ',') AS uuid[]))
  AND coalesce(lease_token = CAST(:token AS uuid), false)
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

# Before a batch is recorded, its enrollments are locked, in id order, skipping those another
# transaction holds (an API call changing the enrollment, or track() inside a host's open
# transaction): their outcomes wait for the next write. Every change to an enrollment's chain
# (pause, resume, unenroll, restart, exit, events) is made under this row lock, and FINISH runs as
# the next statement, so its snapshot holds every such change that committed before: a restart
# or an event can no longer slip in between the read and the write. Skipping instead of waiting
# means the worker never waits on a host's transaction and is never part of a deadlock.
LOCK_ENROLLMENTS = """
SELECT id::text AS id_text FROM {s}.enrollments
WHERE id = ANY(CAST(string_to_array(:ids, ',') AS uuid[]))
ORDER BY id
FOR NO KEY UPDATE SKIP LOCKED
"""

# One statement finishes a batch: outcomes are written where this worker still holds the lease
# (a late worker's write is a no-op), and only for those the enrollments move on and the next
# executions are inserted. A row still ``scheduled`` is *live*: it gets the outcome. A row an API
# call cancelled while it was in flight keeps its state (it never flips back to sent, and never
# moves its enrollment); if the provider had already accepted the message, the row says so. Each
# step passes its rows on through RETURNING, so no step joins back to another (no per-batch
# quadratic join). A batch row leaves out what is null (and ``held`` when false): every key parsed
# costs the server time.
FINISH = """
WITH v AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(
        id uuid, state text, scheduled_for timestamptz, executed_at timestamptz,
        failed_at timestamptz, retry_count int, recipient text, payload jsonb, response jsonb,
        error_message text, adapter_id uuid, held boolean, action text,
        next_id uuid, next_step_id uuid, next_due timestamptz, next_waiting text,
        next_channel text, provider_message_id text, branch text, exit_reason text,
        side_id uuid, side_step_id uuid, side_due timestamptz, side_channel text,
        side_occurrence int, delivery_ms int)
), done AS (
    UPDATE {s}.step_executions AS x
    SET state = CASE WHEN x.state = 'scheduled' THEN v.state ELSE x.state END,
        scheduled_for = CASE WHEN x.state = 'scheduled'
                             THEN COALESCE(v.scheduled_for, x.scheduled_for)
                             ELSE x.scheduled_for END,
        executed_at = CASE WHEN x.state = 'scheduled' OR v.state = 'sent'
                           THEN v.executed_at ELSE x.executed_at END,
        failed_at = CASE WHEN x.state = 'scheduled' THEN v.failed_at ELSE x.failed_at END,
        retry_count = CASE WHEN x.state = 'scheduled' THEN v.retry_count ELSE x.retry_count END,
        recipient = CASE WHEN x.state = 'scheduled' OR v.state = 'sent'
                         THEN v.recipient ELSE x.recipient END,
        payload = CASE WHEN x.state = 'scheduled' OR v.state = 'sent'
                       THEN v.payload ELSE x.payload END,
        response = CASE WHEN x.state = 'scheduled' OR v.state = 'sent'
                        THEN v.response ELSE x.response END,
        error_message = CASE WHEN x.state = 'scheduled' THEN v.error_message
                             WHEN v.state = 'sent' THEN concat_ws('; ', x.error_message,
                                 'the provider had accepted the message before it was cancelled')
                             ELSE x.error_message END,
        adapter_id = CASE WHEN x.state = 'scheduled' OR v.state = 'sent'
                          THEN v.adapter_id ELSE x.adapter_id END,
        -- What the provider called the message: its webhooks name it so (dripdrop.inbound).
        provider_message_id = CASE WHEN v.state = 'sent' THEN v.provider_message_id
                                   ELSE x.provider_message_id END,
        -- How long the provider took to answer (the analytics rollups' latency, 0011).
        delivery_ms = CASE WHEN x.state = 'scheduled' OR v.state = 'sent'
                           THEN v.delivery_ms ELSE x.delivery_ms END,
        held = CASE WHEN x.state = 'scheduled' THEN COALESCE(v.held, false) ELSE x.held END,
        branch = COALESCE(v.branch, x.branch),
        lease_token = NULL, locked_by = NULL, locked_until = NULL, updated_at = :now
    FROM v
    -- The token test is wrapped so the planner does not take it for a selective one: with next
    -- to no leased rows in its statistics it would expect one row, scan a small table for it
    -- and then walk the whole batch again for each row found.
    WHERE x.id = v.id AND coalesce(x.lease_token = CAST(:token AS uuid), false)
    RETURNING v.*, x.enrollment_id, x.tenant_key, x.state = v.state AS live
), moved AS (
    UPDATE {s}.enrollments AS e
    SET current_step_id = CASE WHEN t.action = 'next' THEN t.next_step_id
                               WHEN t.action IN ('complete', 'end_chain') THEN NULL
                               ELSE e.current_step_id END,
        state = CASE t.action WHEN 'complete' THEN 'completed' WHEN 'halt' THEN 'cancelled'
                ELSE e.state END,
        completed_at = CASE WHEN t.action = 'complete' THEN CAST(:now AS timestamptz)
                       ELSE e.completed_at END,
        cancelled_at = CASE WHEN t.action = 'halt' THEN CAST(:now AS timestamptz)
                       ELSE e.cancelled_at END,
        exit_reason = CASE t.action WHEN 'complete' THEN COALESCE(t.exit_reason, 'completed')
                      WHEN 'halt' THEN 'halted' WHEN 'end_chain' THEN t.exit_reason
                      ELSE e.exit_reason END,
        updated_at = :now
    FROM done AS t
    WHERE e.id = t.enrollment_id AND t.action IS NOT NULL AND t.live
      AND e.state IN ('active', 'paused')
    RETURNING t.*, e.state AS enrollment_state
), inserted AS (
    INSERT INTO {s}.step_executions (id, enrollment_id, step_id, state, scheduled_for,
        waiting_for, channel, idempotency_key, held, tenant_key, occurrence)
    SELECT t.next_id, t.enrollment_id, t.next_step_id, 'scheduled', t.next_due, t.next_waiting,
           t.next_channel, t.next_id::text, t.enrollment_state = 'paused', t.tenant_key, NULL
    FROM moved AS t
    WHERE t.action = 'next'
    UNION ALL
    -- A recurring step's next occurrence, beside the chain (never moves the enrollment).
    SELECT t.side_id, t.enrollment_id, t.side_step_id, 'scheduled', t.side_due, NULL,
           t.side_channel, t.side_id::text, e.state = 'paused', t.tenant_key, t.side_occurrence
    FROM done AS t JOIN {s}.enrollments AS e ON e.id = t.enrollment_id
    WHERE t.side_id IS NOT NULL AND t.live AND e.state IN ('active', 'paused')
    RETURNING id
)
SELECT id, live FROM done
"""

# Just before a delivery that had to wait (hooks, external templates, the network) is handed to
# its provider: is the claim still this worker's, and may the enrollment still receive it? A
# pause, unenroll, restart or exit that committed since the claim stops it here.
FENCE = """
SELECT x.id::text AS id, x.lease_token
FROM {s}.step_executions AS x JOIN {s}.enrollments AS e ON e.id = x.enrollment_id
WHERE x.id = ANY(CAST(string_to_array(:ids, ',') AS uuid[]))
  AND x.state = 'scheduled' AND NOT x.held
  AND (e.state = 'active' OR x.replay_of IS NOT NULL)
"""

# The heartbeat: executions still in flight keep their lease. Rows locked right now (being
# recorded) are skipped rather than waited for, so the heartbeat never deadlocks with a record.
RENEW = """
UPDATE {s}.step_executions AS x
SET locked_until = clock_timestamp() + make_interval(secs => :lease)
WHERE x.id IN (
    SELECT id FROM {s}.step_executions
    WHERE id = ANY(CAST(string_to_array(:ids, ',') AS uuid[]))
      AND coalesce(lease_token = CAST(:token AS uuid), false) AND state = 'scheduled'
    FOR UPDATE SKIP LOCKED
)
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
def placeholders(sql: str) -> str:
    """SQL with SQLAlchemy's ``:name`` binds as psycopg's ``%(name)s``."""
    return _BIND.sub(r"%(\1)s", sql)


def raw_sql(sql: str, schema: str) -> str:
    """A named query for psycopg directly (``%(name)s`` placeholders), for the hottest paths where
    SQLAlchemy's per-row overhead shows."""
    return placeholders(sql.format(s=f'"{schema}"'))


def q(sql: str, schema: str) -> Any:
    """A named query in this schema (the schema name was validated as an identifier)."""
    return text(sql.format(s=f'"{schema}"'))


def next_due(conn: Connection, schema: str) -> datetime | None:
    return conn.execute(q(NEXT_DUE, schema)).scalar()


def next_wake(conn: Connection, schema: str) -> tuple[datetime | None, float | None]:
    """(first unleased due time, seconds until the first lease ahead of it runs out)."""
    row = conn.execute(q(NEXT_WAKE, schema)).one()
    return row.next_free, None if row.lease_left is None else float(row.lease_left)


# --- one execution at a time, for schedulers other than PostgreSQL (worker/single.py,
# worker/dispatch.py) --------------------------------------------------------------------------

# ``dd.run_execution(id)``: the claim of one execution, under the same rules as CLAIM (scheduled,
# not held, due on the engine's clock, no live claim), plus one: a row a dispatcher reserved for a
# scheduler (``lease_token IS NULL`` under a live ``locked_until``) may be claimed — that
# reservation only keeps the row from being handed out twice, it is nobody's claim. A row locked
# right now (a dispatcher noting the job id, a record, a heartbeat: short transactions) is waited
# for, not skipped — the job was handed out for this row and would otherwise end without it —
# and the test is made again on the row as that transaction left it.
CLAIM_ONE = """
WITH due AS (
    -- recovered: a worker's lease ran out (not a dispatcher's reservation: no token), metrics
    SELECT id, lease_token IS NOT NULL AS recovered FROM {s}.step_executions
    WHERE id = :id AND state = 'scheduled' AND NOT held AND scheduled_for <= :now
      AND (locked_until IS NULL OR locked_until < clock_timestamp() OR lease_token IS NULL)
    FOR UPDATE
), claimed AS (
    UPDATE {s}.step_executions AS x
    SET lease_token = :token, locked_by = :worker,
        locked_until = clock_timestamp() + make_interval(secs => :lease), updated_at = :now
    FROM due
    WHERE x.id = due.id
    RETURNING x.id, x.enrollment_id, x.step_id, x.scheduled_for, x.retry_count, x.adapter_id,
              x.waiting_for, x.replay_of, x.idempotency_key, x.channel, x.tenant_key,
              x.occurrence, due.recovered
)
SELECT c.*, c.id::text AS id_text, e.id::text AS enrollment_id_text,
       e.sequence_id, e.sequence_version_id, e.subscriber_type, e.subscriber_id,
       e.state AS enrollment_state, e.current_step_id, e.started_at, e.completed_at,
       e.cancelled_at, e.data, e.metadata, e.tenant_key AS enrollment_tenant_key
FROM claimed AS c JOIN {s}.enrollments AS e ON e.id = c.enrollment_id
"""

# Why an execution could not be claimed (read only when CLAIM_ONE found nothing).
EXECUTION_STATUS = """
SELECT state, held, scheduled_for, lease_token IS NOT NULL AND locked_until >= clock_timestamp()
       AS claimed
FROM {s}.step_executions WHERE id = :id
"""

# A dispatcher reserves due rows for its scheduler: no claim (no lease token), only a window
# (``locked_until``) during which no other dispatcher or worker takes them. A message the
# scheduler loses is thus handed out again when the window runs out; ``run_execution`` claims the
# row for real. Reads the head of the due index only, like CLAIM.
DISPATCH = """
WITH due AS (
    SELECT id FROM {s}.step_executions
    WHERE state = 'scheduled' AND NOT held AND scheduled_for <= :now
      AND (locked_until IS NULL OR locked_until < clock_timestamp())
    ORDER BY scheduled_for
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE {s}.step_executions AS x
SET lease_token = NULL, locked_by = :dispatcher,
    locked_until = clock_timestamp() + make_interval(secs => :window)
FROM due
WHERE x.id = due.id
RETURNING x.id, x.scheduled_for
"""

# The job ids a scheduler gave for a dispatched batch, kept in ``locked_by`` ("job:<id>") so a
# later cancel can withdraw the job. Rows claimed meanwhile (a lease token) are left alone.
DISPATCHED_JOBS = """
UPDATE {s}.step_executions AS x
SET locked_by = 'job:' || j.job
FROM unnest(CAST(:ids AS uuid[]), CAST(:jobs AS text[])) AS j(id, job)
WHERE x.id = j.id AND x.state = 'scheduled' AND x.lease_token IS NULL
"""

# Give back a dispatch reservation at once (the scheduler refused the job).
UNDISPATCH = """
UPDATE {s}.step_executions
SET locked_by = NULL, locked_until = NULL
WHERE id = ANY(CAST(:ids AS uuid[])) AND state = 'scheduled' AND lease_token IS NULL
"""


# --- flow control (engine/flow.py) ---------------------------------------------------------------

# When the enrollments' steps were sent, for throttles (``ix_step_executions_enrollment``).
SENDS_OF = """
SELECT enrollment_id, step_id, executed_at FROM {s}.step_executions
WHERE enrollment_id = ANY(:ids) AND state = 'sent' AND executed_at IS NOT NULL
"""

# With recurring steps, an enrollment whose chain has ended (no current step) is complete once
# nothing of it is scheduled any more (its last occurrence ran). Runs after FINISH, in its
# transaction, under the enrollments' locks; only for versions with recurring steps.
COMPLETE_IDLE = """
UPDATE {s}.enrollments AS e
SET state = 'completed', completed_at = :now, updated_at = :now,
    exit_reason = COALESCE(e.exit_reason, 'completed')
WHERE e.id = ANY(:ids) AND e.state = 'active' AND e.current_step_id IS NULL
  AND NOT EXISTS (SELECT 1 FROM {s}.step_executions AS x
                  WHERE x.enrollment_id = e.id AND x.state = 'scheduled')
"""

# When each step of these enrollments last ran (an event step the chain comes back to waits for
# an event newer than that).
LAST_RUNS = """
SELECT enrollment_id, step_id, max(COALESCE(executed_at, scheduled_for)) AS last
FROM {s}.step_executions
WHERE enrollment_id = ANY(:ids) AND state IN ('sent', 'skipped', 'failed')
GROUP BY enrollment_id, step_id
"""
