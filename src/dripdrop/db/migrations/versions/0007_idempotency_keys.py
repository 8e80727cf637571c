"""Idempotency keys of the REST API: the first answer to a request, replayed to its repeats.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

One row per (scope, key), scope being the API key (or tenant) that sent it; written in the
same transaction as what the request did, so a key is stored if and only if its work is. The
primary key makes a concurrent second request with the same key wait for the first, then
read its answer. Rows older than 24 hours are expired (and reused or purged).
"""

from __future__ import annotations

from alembic import context, op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"""
        CREATE TABLE {s}.idempotency_keys (
            scope text NOT NULL,
            key text NOT NULL,
            request_hash bytea NOT NULL,
            status integer NOT NULL,
            response jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_idempotency_keys PRIMARY KEY (scope, key)
        )
    """)
    op.execute(f"CREATE INDEX ix_idempotency_keys_created_at ON {s}.idempotency_keys (created_at)")


def downgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"DROP TABLE {s}.idempotency_keys")
