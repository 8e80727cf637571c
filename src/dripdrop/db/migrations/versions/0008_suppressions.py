"""Suppressions and sequence categories (deliverability).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

``suppressions`` holds who must not be sent to: one row per (channel, normalised recipient,
tenant, category), NULL tenant meaning every tenant and NULL category every category. The unique
index compares NULLs as equal through COALESCE (PostgreSQL 14 has no NULLS NOT DISTINCT), so a
repeated suppress is an upsert, never a second row. The worker looks a batch's recipients up by
(channel, recipient): that index serves it and lists per channel.

``sequences.category`` (NULL = uncategorised) scopes unsubscribes: ``marketing``, ``product``…;
``transactional`` sequences ignore unsubscribes made for other categories.
"""

from __future__ import annotations

from alembic import context, op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"ALTER TABLE {s}.sequences ADD COLUMN category text")
    op.execute(f"""
        CREATE TABLE {s}.suppressions (
            id uuid DEFAULT gen_random_uuid(),
            channel text NOT NULL,
            recipient text NOT NULL,
            reason text NOT NULL,
            category text,
            tenant_key text,
            source text,
            metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            inserted_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_suppressions PRIMARY KEY (id),
            CONSTRAINT ck_suppressions_reason
                CHECK (reason IN ('unsubscribe', 'bounce', 'complaint', 'manual'))
        )
    """)
    op.execute(f"""
        CREATE UNIQUE INDEX uq_suppressions_target ON {s}.suppressions
            (channel, recipient, COALESCE(tenant_key, ''), COALESCE(category, ''))
    """)
    # Listing newest first (REST pages, CLI export), per tenant.
    op.execute(
        f"CREATE INDEX ix_suppressions_tenant_inserted ON {s}.suppressions "
        "(COALESCE(tenant_key, ''), inserted_at, id)"
    )


def downgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"DROP TABLE {s}.suppressions")
    op.execute(f"ALTER TABLE {s}.sequences DROP COLUMN category")
