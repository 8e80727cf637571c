"""Leave half of each enrollments page free, so moving enrollments on stays a HOT update.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

Enrollments are created together (``enroll_many``, a signup wave) and so move on together: a
batch moves every row of a page within milliseconds, while the old versions are still visible to
someone and cannot be pruned. At fillfactor 80 a page had room for the new versions of about a
quarter of its rows; the rest (71 % of moves in ``bench/dispatch.py``) were non-HOT updates, each
writing four index entries (two of them on text keys) and a row on another page. At 50 every
move is HOT, the server spends 8 % less per execution, and the table ends no larger: the
non-HOT versions had been growing it by as much. Pages written before this migration keep their
layout until they are rewritten.
"""

from __future__ import annotations

from alembic import context, op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _set(fillfactor: int) -> None:
    schema = context.config.attributes["schema"]
    op.execute(f'ALTER TABLE "{schema}".enrollments SET (fillfactor = {fillfactor})')


def upgrade() -> None:
    _set(50)


def downgrade() -> None:
    _set(80)
