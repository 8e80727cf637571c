"""``dripdrop rotate-key``: re-encrypt secrets with the newest key, in resumable batches."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from dripdrop.db import models as m
from dripdrop.definitions.secrets import aad

# (table, encrypted column) pairs that hold secrets.
SECRET_COLUMNS = (
    (m.ChannelAdapter.__table__, "credentials"),
    (m.HttpHook.__table__, "auth_config"),
)


def rotate_all(rt: Any, *, batch_size: int = 500) -> dict[str, int]:
    """Re-encrypt every secret not yet under the newest key. Each batch commits on its own, so an
    interrupted run resumes where it stopped (rows already rotated are skipped)."""
    ring = rt.keyring
    counts: dict[str, int] = {}
    for table, column in SECRET_COLUMNS:
        col = table.c[column]
        done = 0
        last_id = None
        while True:
            with rt.engine.begin() as conn:
                stmt = select(table.c.id, col).where(col.is_not(None)).order_by(table.c.id)
                if last_id is not None:
                    stmt = stmt.where(table.c.id > last_id)
                rows = conn.execute(stmt.limit(batch_size).with_for_update()).all()
                if not rows:
                    break
                for row in rows:
                    blob = bytes(row[1])
                    if ring.needs_rotation(blob):
                        where = aad(table.name, column, row.id)
                        plain = ring.decrypt(blob, aad=where)
                        conn.execute(
                            update(table)
                            .where(table.c.id == row.id)
                            .values({column: ring.encrypt(plain, aad=where)})
                        )
                        done += 1
                last_id = rows[-1].id
        counts[table.name] = done
    return counts
