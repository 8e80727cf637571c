"""Cheap questions about the queue for gauges, ``/health`` and ``dripdrop doctor``.

Both read only the head of the partial due index (``ix_step_executions_due``), capped, so they
cost the same with ten due rows or ten million.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

_DUE = """
SELECT count(*) AS due,
       EXTRACT(EPOCH FROM CAST(:now AS timestamptz) - min(scheduled_for)) AS oldest
FROM (
    SELECT scheduled_for FROM {s}.step_executions
    WHERE state = 'scheduled' AND NOT held AND scheduled_for <= :now
      AND (locked_until IS NULL OR locked_until < clock_timestamp())
    ORDER BY scheduled_for
    LIMIT :cap
) AS head
"""


def due_summary(
    conn: Connection, schema: str, now: datetime, *, cap: int = 100_000
) -> tuple[int, float | None]:
    """(executions due and claimable, counted up to ``cap``; seconds the oldest of them has
    waited past its due time, None when nothing waits). Rows being sent are not counted."""
    row = conn.execute(text(_DUE.format(s=f'"{schema}"')), {"now": now, "cap": cap}).one()
    return int(row.due), None if row.oldest is None else max(0.0, float(row.oldest))
