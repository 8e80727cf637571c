"""API keys of the REST API: a hash of each token, never the token.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

A token is ``dd_<prefix>_<secret>``; the prefix (public, unique) finds the row, the SHA-256 of the
whole token is compared in constant time. Tokens carry 256 random bits, so a fast hash is as
safe as a slow one and keeps every request cheap.
"""

from __future__ import annotations

from alembic import context, op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"""
        CREATE TABLE {s}.api_keys (
            id uuid DEFAULT gen_random_uuid(),
            name text NOT NULL,
            prefix text NOT NULL,
            token_hash bytea NOT NULL,
            scopes text[] NOT NULL,
            tenant_key text,
            last_used_at timestamptz,
            revoked_at timestamptz,
            inserted_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_api_keys PRIMARY KEY (id),
            CONSTRAINT uq_api_keys_prefix UNIQUE (prefix)
        )
    """)


def downgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"DROP TABLE {s}.api_keys")
