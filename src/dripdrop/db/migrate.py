"""Apply the packaged Alembic migrations to one schema, idempotently."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).with_name("migrations")
# Serialises concurrent setup() calls (two workers starting at once) per schema.
_LOCK_NAMESPACE = 0x0D21D2


def alembic_config(connection: Connection, schema: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    cfg.attributes["schema"] = schema
    return cfg


def upgrade(engine: Engine, schema: str, revision: str = "head") -> None:
    """Create the schema if needed and apply migrations up to ``revision``."""
    with engine.begin() as conn:
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:ns, hashtext(:schema))"),
            {"ns": _LOCK_NAMESPACE, "schema": schema},
        )
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        command.upgrade(alembic_config(conn, schema), revision)


def current_revision(engine: Engine, schema: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table_schema": schema})
        return ctx.get_current_revision()
