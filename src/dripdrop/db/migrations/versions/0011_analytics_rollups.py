"""Analytics rollups kept current as executions finish.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

Placeholder: filled by the issue that owns it (empty until then).
"""

from __future__ import annotations

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
