"""Quiet hours, rate limits and frequency caps.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30

Placeholder: filled by the issue that owns it (empty until then).
"""

from __future__ import annotations

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
