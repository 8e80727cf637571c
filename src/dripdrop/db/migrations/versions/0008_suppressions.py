"""Suppressions and sequence categories (deliverability).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

Placeholder: filled by the issue that owns it (empty until then).
"""

from __future__ import annotations

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
