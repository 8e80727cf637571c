"""Flow control: transitions, splits, goals, recurring steps, digests.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

Placeholder: filled by the issue that owns it (empty until then).
"""

from __future__ import annotations

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
