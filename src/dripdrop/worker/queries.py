"""The hot queries of the PostgreSQL queue, in one place (checked with EXPLAIN in the tests).

The execution row is the job: ``state = 'scheduled' AND NOT held`` rows are waiting, and the
partial index ``ix_step_executions_due`` holds exactly those, ordered by ``scheduled_for`` — so a
claim costs the same whether the table holds a thousand finished rows or a hundred million.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

CLAIM = """
WITH due AS (
    SELECT id FROM {s}.step_executions
    WHERE state = 'scheduled' AND NOT held AND scheduled_for <= :now
    ORDER BY scheduled_for
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE {s}.step_executions AS x
SET state = 'sending', lease_token = :token, locked_by = :worker,
    locked_until = clock_timestamp() + make_interval(secs => :lease), updated_at = :now
FROM due
WHERE x.id = due.id
RETURNING x.id, x.enrollment_id, x.step_id, x.scheduled_for, x.retry_count, x.adapter_id,
          x.waiting_for, x.replay_of, x.idempotency_key, x.channel, x.tenant_key
"""

# The same claim restricted to one enrollment (simulations, which must never touch real work).
CLAIM_ENROLLMENT = CLAIM.replace(
    "WHERE state = 'scheduled' AND NOT held AND scheduled_for <= :now",
    "WHERE state = 'scheduled' AND NOT held AND scheduled_for <= :now "
    "AND enrollment_id = :enrollment_id",
)

# Leases are real time (clock_timestamp), not the injectable clock: they protect against dead
# workers, which a fake clock in tests must not expire by accident.
RECOVER_LEASES = """
UPDATE {s}.step_executions
SET state = 'scheduled', lease_token = NULL, locked_by = NULL, locked_until = NULL
WHERE id IN (
    SELECT id FROM {s}.step_executions
    WHERE state = 'sending' AND locked_until < clock_timestamp()
    LIMIT 1000 FOR UPDATE SKIP LOCKED
)
RETURNING id
"""

RELEASE = """
UPDATE {s}.step_executions
SET state = 'scheduled', lease_token = NULL, locked_by = NULL, locked_until = NULL
WHERE lease_token = :token AND state = 'sending' AND id = ANY(:ids)
"""

NEXT_DUE = """
SELECT scheduled_for FROM {s}.step_executions
WHERE state = 'scheduled' AND NOT held AND scheduled_for IS NOT NULL
ORDER BY scheduled_for LIMIT 1
"""

# One statement finishes a whole batch; the lease token makes a late worker's write a no-op.
COMPLETE = """
UPDATE {s}.step_executions AS x
SET state = v.state, scheduled_for = COALESCE(v.scheduled_for, x.scheduled_for),
    executed_at = v.executed_at, failed_at = v.failed_at, retry_count = v.retry_count,
    recipient = v.recipient, payload = v.payload, response = v.response,
    error_message = v.error_message, adapter_id = v.adapter_id, held = v.held,
    lease_token = NULL, locked_by = NULL, locked_until = NULL, updated_at = :now
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(
    id uuid, token uuid, state text, scheduled_for timestamptz, executed_at timestamptz,
    failed_at timestamptz, retry_count int, recipient text, payload jsonb, response jsonb,
    error_message text, adapter_id uuid, held boolean)
WHERE x.id = v.id AND x.lease_token = v.token AND x.state = 'sending'
RETURNING x.id
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


def q(sql: str, schema: str) -> Any:
    """A named query in this schema (the schema name was validated as an identifier)."""
    return text(sql.format(s=f'"{schema}"'))


def next_due(conn: Connection, schema: str) -> datetime | None:
    return conn.execute(q(NEXT_DUE, schema)).scalar()
