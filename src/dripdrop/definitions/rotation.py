"""``dripdrop rotate-key``: re-encrypt secrets with the newest key, in resumable batches.

A row that cannot be decrypted (its key left the ring, or it was tampered with or copied from
another row) does not stop the run: the others are rotated, and the bad ones are reported by
table and id, so an operator can put the old key back or set those credentials again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from dripdrop.db import models as m
from dripdrop.definitions.secrets import aad
from dripdrop.errors import CryptoError

# (table, encrypted column) pairs that hold secrets.
SECRET_COLUMNS = (
    (m.ChannelAdapter.__table__, "credentials"),
    (m.HttpHook.__table__, "auth_config"),
)


@dataclass(frozen=True)
class Unrotated:
    """A row left as it was: where it is and why (the CryptoError's text, never a value)."""

    table: str
    id: uuid.UUID
    reason: str


@dataclass
class Rotation:
    """What a run did: rows re-encrypted per table, and the rows it could not decrypt."""

    counts: dict[str, int] = field(default_factory=dict)
    failed: list[Unrotated] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def rotate_all(rt: Any, *, batch_size: int = 500) -> Rotation:
    """Re-encrypt every secret not yet under the newest key. Each batch commits on its own, so an
    interrupted run resumes where it stopped (rows already rotated are skipped). Rows that cannot
    be decrypted are skipped and listed in the result."""
    ring = rt.keyring
    result = Rotation()
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
                    where = aad(table.name, column, row.id)
                    try:
                        if not ring.needs_rotation(blob):
                            continue
                        plain = ring.decrypt(blob, aad=where)
                    except CryptoError as exc:
                        result.failed.append(Unrotated(table.name, row.id, str(exc)))
                        continue
                    conn.execute(
                        update(table)
                        .where(table.c.id == row.id)
                        .values({column: ring.encrypt(plain, aad=where)})
                    )
                    done += 1
                last_id = rows[-1].id
        result.counts[table.name] = done
    return result
