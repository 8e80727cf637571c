"""Waking idle workers with PostgreSQL NOTIFY (delivered on commit, dropped on rollback)."""

from __future__ import annotations

from sqlalchemy import Connection, text


def channel_name(schema: str) -> str:
    return f"dripdrop_{schema}"


def wake_workers(conn: Connection, schema: str) -> None:
    """Tell listening workers that work is due now."""
    conn.execute(text("SELECT pg_notify(:ch, 'due')"), {"ch": channel_name(schema)})
