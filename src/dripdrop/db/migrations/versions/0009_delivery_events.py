"""Provider delivery events and provider message ids.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

``step_executions.provider_message_id`` is the id the provider gave a sent message (written by
the worker with the outcome); a partial index holds only rows that have one, so matching a
webhook's ids to executions is an index lookup whatever the size of the history.
``step_executions.delivery_status`` is the strongest status the provider reported so far
(delivered, opened, bounced…; see :mod:`dripdrop.inbound.events`).

``delivery_events`` records what providers reported, one row per provider event: the unique
(provider, provider_event_id) makes a provider's retry of the same event a no-op. ``data`` holds
a few documented fields of the event (never signatures, never clicked links' query strings).
The partial index on soft bounces serves the soft-bounce threshold (count per recipient over a
window).
"""

from __future__ import annotations

from alembic import context, op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"ALTER TABLE {s}.step_executions ADD COLUMN provider_message_id text")
    op.execute(f"ALTER TABLE {s}.step_executions ADD COLUMN delivery_status text")
    op.execute(
        f"CREATE INDEX ix_step_executions_provider_message_id ON {s}.step_executions "
        "(provider_message_id) WHERE provider_message_id IS NOT NULL"
    )
    op.execute(f"""
        CREATE TABLE {s}.delivery_events (
            id uuid DEFAULT gen_random_uuid(),
            execution_id uuid NOT NULL,
            adapter_id uuid,
            provider text NOT NULL,
            provider_event_id text NOT NULL,
            type text NOT NULL,
            channel text NOT NULL,
            recipient text,
            occurred_at timestamptz NOT NULL,
            data jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            tenant_key text,
            inserted_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_delivery_events PRIMARY KEY (id),
            CONSTRAINT fk_delivery_events_execution_id_step_executions
                FOREIGN KEY (execution_id) REFERENCES {s}.step_executions (id) ON DELETE CASCADE,
            CONSTRAINT fk_delivery_events_adapter_id_channel_adapters
                FOREIGN KEY (adapter_id) REFERENCES {s}.channel_adapters (id) ON DELETE SET NULL,
            CONSTRAINT uq_delivery_events_provider_provider_event_id
                UNIQUE (provider, provider_event_id),
            CONSTRAINT ck_delivery_events_type CHECK (type IN (
                'sent', 'delivered', 'deferred', 'soft_bounced', 'bounced', 'complained',
                'opened', 'clicked', 'unsubscribed', 'failed'))
        )
    """)
    op.execute(
        f"CREATE INDEX ix_delivery_events_execution ON {s}.delivery_events "
        "(execution_id, occurred_at)"
    )
    op.execute(
        f"CREATE INDEX ix_delivery_events_soft_bounces ON {s}.delivery_events "
        "(recipient, occurred_at) WHERE type = 'soft_bounced'"
    )


def downgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"DROP TABLE {s}.delivery_events")
    op.execute(f"DROP INDEX {s}.ix_step_executions_provider_message_id")
    op.execute(f"ALTER TABLE {s}.step_executions DROP COLUMN delivery_status")
    op.execute(f"ALTER TABLE {s}.step_executions DROP COLUMN provider_message_id")
