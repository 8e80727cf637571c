"""Frequency caps: the recent sends of each subscriber under each cap, shared by every worker.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30

``send_history`` holds one row per cap key (tenant, subscriber, the cap's category, channel and
rate): the send times still inside the cap's period and, beside each, the execution that made
it (an execution holds at most one entry, so a retry or a deferral back is never counted
twice). A reservation is one ``INSERT … ON CONFLICT DO UPDATE`` on that row (engine/
frequency_caps.py). ``expires_at`` is when the newest entry leaves the period: rows past it
hold nothing and are deleted now and then.
"""

from __future__ import annotations

from alembic import context, op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"""
        CREATE TABLE {s}.send_history (
            key text NOT NULL,
            sent_at timestamptz[] NOT NULL,
            execution_ids uuid[] NOT NULL,
            expires_at timestamptz NOT NULL,
            CONSTRAINT pk_send_history PRIMARY KEY (key)
        )
    """)
    op.execute(f"CREATE INDEX ix_send_history_expires_at ON {s}.send_history (expires_at)")


def downgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"DROP TABLE IF EXISTS {s}.send_history")
