"""One inbox notification per execution: a redelivery adds no second row.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

The ``postgres`` pub/sub provider writes its notification in its own transaction, before the
worker records the execution's outcome. An execution delivered again under the same id (its
worker died before recording it, or its lease ran out) used to add a second notification; with a
unique index on ``execution_id`` the provider inserts ``ON CONFLICT DO NOTHING`` and returns the
first row instead. A replay is a new execution, so it still gets a notification of its own.

Duplicates already stored are removed first, keeping the oldest of each execution (a copy that
was read marks it read), so the index can be built on existing databases. The index is built
in the migration's transaction, which blocks inserts into ``notifications`` meanwhile.
"""

from __future__ import annotations

from alembic import context, op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"""
UPDATE {s}.notifications AS n SET read_at = r.read_at
FROM (
    SELECT execution_id, min(read_at) AS read_at FROM {s}.notifications
    WHERE execution_id IS NOT NULL
    GROUP BY execution_id HAVING count(*) > 1 AND count(read_at) > 0
) AS r
WHERE n.execution_id = r.execution_id AND n.read_at IS NULL
""")
    op.execute(f"""
DELETE FROM {s}.notifications WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY execution_id ORDER BY inserted_at, id) AS n
        FROM {s}.notifications WHERE execution_id IS NOT NULL
    ) AS ranked
    WHERE ranked.n > 1
)
""")
    op.execute(
        f"CREATE UNIQUE INDEX uq_notifications_execution ON {s}.notifications (execution_id) "
        "WHERE execution_id IS NOT NULL"
    )


def downgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"DROP INDEX {s}.uq_notifications_execution")
