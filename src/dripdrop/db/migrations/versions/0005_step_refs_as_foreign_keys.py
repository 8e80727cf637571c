"""References to steps are plain foreign keys again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

Migration 0002 replaced the foreign keys ``step_executions.step_id`` and
``enrollments.current_step_id`` by statement-level triggers that emulated them (and dropped
``ix_step_executions_step``), to check each referenced step once per statement instead of once
per row. It was faster (the server's time per execution 72 -> 63 us in ``bench/dispatch.py``),
but a reviewer had to read a page of PL/pgSQL to trust what a foreign key states in one line, and
every guarantee of the worker leans on these references. The constraints come back under their
old names, with the same cascades; the triggers and their functions go. The cost is measured in
``bench/dispatch.py`` and stated in docs/worker.md.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _migration_0002() -> Any:
    """0002's own statements, both ways, so the two migrations can never drift apart."""
    path = Path(__file__).with_name("0002_step_refs_per_statement.py")
    spec = importlib.util.spec_from_file_location("dripdrop_migration_0002", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    _migration_0002().downgrade()  # triggers out, foreign keys and their index back


def downgrade() -> None:
    _migration_0002().upgrade()
