"""Rate limits: the pacing of short limits and the counts of long ones, shared by every worker.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30

``send_pacing`` holds, per limit key (an adapter's or a recipient domain's limit), the next
free send slot: a send reserves one by moving it on by period/limit, so sends are spaced evenly
and no window of the period ever holds more than the limit. ``send_counts`` counts sends per
fixed window for limits longer than a minute (a daily quota is a budget, not a pace).
"""

from __future__ import annotations

from alembic import context, op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"""
        CREATE TABLE {s}.send_pacing (
            key text NOT NULL,
            next_at timestamptz NOT NULL,
            CONSTRAINT pk_send_pacing PRIMARY KEY (key)
        )
    """)
    op.execute(f"""
        CREATE TABLE {s}.send_counts (
            key text NOT NULL,
            window_start timestamptz NOT NULL,
            count integer NOT NULL,
            CONSTRAINT pk_send_counts PRIMARY KEY (key, window_start)
        )
    """)
    op.execute(f"CREATE INDEX ix_send_counts_window_start ON {s}.send_counts (window_start)")


def downgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"DROP TABLE IF EXISTS {s}.send_counts")
    op.execute(f"DROP TABLE IF EXISTS {s}.send_pacing")
