"""Operations: the enroll span an enrollment's executions link to, and the retention archive.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30

``enrollments.trace_parent`` holds the W3C traceparent of the ``enroll`` call that created (or
restarted) the enrollment, written only while an OpenTelemetry SDK is configured; execution
spans link to it (dripdrop.observability.tracing). A nullable column without a default: adding
it rewrites nothing, and a NULL costs no space in the row.

``archived_rows`` receives what ``prune(archive=True)`` removes, one JSON document per row
(``to_jsonb`` of the row as it was), so later schema changes never break the archive.
"""

from __future__ import annotations

from alembic import context, op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"ALTER TABLE {s}.enrollments ADD COLUMN trace_parent text")
    op.execute(f"""
        CREATE TABLE {s}.archived_rows (
            id bigint GENERATED ALWAYS AS IDENTITY,
            table_name text NOT NULL,
            row_id uuid NOT NULL,
            row jsonb NOT NULL,
            archived_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_archived_rows PRIMARY KEY (id)
        )
    """)
    op.execute(
        f"CREATE INDEX ix_archived_rows_table_archived_at ON {s}.archived_rows "
        "(table_name, archived_at)"
    )


def downgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"DROP TABLE {s}.archived_rows")
    op.execute(f"ALTER TABLE {s}.enrollments DROP COLUMN trace_parent")
