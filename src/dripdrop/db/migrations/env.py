"""Alembic environment: runs on the connection DripDrop hands over, inside its schema."""

from __future__ import annotations

from alembic import context

from dripdrop.db.models import Base

config = context.config
connection = config.attributes["connection"]
schema = config.attributes["schema"]

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table_schema=schema,
    include_schemas=False,
    transaction_per_migration=False,
)

with context.begin_transaction():
    context.run_migrations()
