"""Retention: history older than a given age is removed (or archived), in small batches.

What goes (each older than the cutoff):

- **finished executions** (``sent``, ``failed``, ``skipped``, ``cancelled``, last changed before
  the cutoff, not under any lease) — with their ``delivery_events`` (ON DELETE CASCADE);
- **events** of enrollments that have ended (``completed``, ``cancelled``): an active
  enrollment's event conditions count its events, so those stay;
- **read notifications** (``read_at`` before the cutoff);
- **idempotency keys** of the REST API older than their 24 hours (whatever the cutoff).

Unfinished work is never touched: a ``scheduled`` row — due, waiting for an event, held by a
pause, or being sent — is excluded by the statement itself, and each batch locks its rows with
``FOR UPDATE SKIP LOCKED``, so a row a worker or an API call holds is skipped, never waited
for. No batch takes a lock the hot path needs: the claim reads only the partial due index
(``scheduled`` rows) and the record writes ``scheduled`` rows and enrollments, none of which a
prune deletes or locks.

Executions, events and notifications have time-ordered ids (UUID v7), so a prune walks the
primary key from the start up to the cutoff's id, ``batch_size`` keys a statement, and needs no
extra index (which every execution's finish would have paid for). Rows written before the ids
became time-ordered are only removed when their random id happens to sort below the bound.

With ``archive=True`` each removed row is first copied, as JSON, into ``archived_rows`` (same
transaction), where it can be exported or queried; a schema change never breaks the archive.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

log = logging.getLogger("dripdrop.retention")

#: Primary-key entries walked (and at most rows removed) per statement: a few milliseconds of
#: a database core each, so a claim that has to share a core with one waits little.
BATCH_SIZE = 250
#: Seconds a batch waits before the next one, at least, leaving the database to the hot path.
PAUSE = 0.01
#: A batch also rests REST_FACTOR times as long as it ran: a pruner works about a tenth of the
#: time. On two cores a pruner deleting with only the short pause cost the claim's p99 2.5x
#: and the drain 22 % (bench/prune.py, 20M rows); ``pause=0`` turns resting off.
REST_FACTOR = 9.0
#: REST idempotency keys answer repeats for this long (web/routes/enrollments.py).
IDEMPOTENCY_TTL = timedelta(hours=24)
# One pruner per schema at a time (session advisory lock: released if the worker dies).
_LOCK_NAMESPACE = 0x0D21D3


def uuid7_floor(when: datetime) -> uuid.UUID:
    """The smallest UUID v7 of ``when``'s millisecond: every id made before it sorts lower."""
    ms = int(when.timestamp() * 1000)
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (0b10 << 62))


# Each statement: walk ``:scan`` primary-key entries after ``:after`` (below ``:bound``), lock
# the removable ones (SKIP LOCKED), remove them; returns the last key walked and the count.
_WALK = """
WITH scan AS MATERIALIZED (
    SELECT id FROM {s}.{table} WHERE id > :after AND id < :bound ORDER BY id LIMIT :scan
), doomed AS (
    SELECT t.id FROM {s}.{table} AS t {join}
    WHERE t.id IN (SELECT id FROM scan) AND {predicate}
    FOR UPDATE OF t SKIP LOCKED
), {steps}
SELECT (SELECT id FROM scan ORDER BY id DESC LIMIT 1) AS last, (SELECT count(*) FROM gone) AS n
"""
_DELETE = "DELETE FROM {s}.{table} AS t USING doomed WHERE t.id = doomed.id RETURNING "
_STEPS_DRY = "gone AS (SELECT id FROM doomed)"
# Only the archive needs whole rows back: building them (payloads and responses read from
# TOAST) was a fifth of a batch's time when they are only counted.
_STEPS_DELETE = "gone AS (" + _DELETE + "t.id)"
_STEPS_ARCHIVE = (
    "deleted AS (" + _DELETE + "t.*), gone AS ("
    "INSERT INTO {s}.archived_rows (table_name, row_id, row) "
    "SELECT '{table}', d.id, to_jsonb(d) FROM deleted AS d RETURNING row_id)"
)


@dataclass(frozen=True)
class _Target:
    table: str
    predicate: str  # on alias t (and e for the join)
    join: str = ""


TARGETS = (
    _Target(
        "step_executions",
        "t.state IN ('sent', 'failed', 'skipped', 'cancelled') AND t.lease_token IS NULL "
        "AND t.updated_at < :cutoff",
    ),
    _Target(
        "events",
        "t.occurred_at < :cutoff AND e.state IN ('completed', 'cancelled')",
        "JOIN {s}.enrollments AS e ON e.id = t.enrollment_id",
    ),
    _Target("notifications", "t.read_at IS NOT NULL AND t.read_at < :cutoff"),
)


def _walk_sql(schema: str, target: _Target, *, dry_run: bool, archive: bool) -> Any:
    s = f'"{schema}"'
    steps = _STEPS_DRY if dry_run else _STEPS_ARCHIVE if archive else _STEPS_DELETE
    sql = _WALK.format(
        s=s,
        table=target.table,
        join=target.join.format(s=s),
        predicate=target.predicate,
        steps=steps.format(s=s, table=target.table),
    )
    return text(sql)


_IDEMPOTENCY = """
WITH doomed AS (
    SELECT ctid FROM {s}.idempotency_keys WHERE created_at < :cutoff
    LIMIT :scan FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM {s}.idempotency_keys AS t USING doomed WHERE t.ctid = doomed.ctid RETURNING 1
)
SELECT count(*) AS n FROM gone
"""
_IDEMPOTENCY_COUNT = "SELECT count(*) AS n FROM {s}.idempotency_keys WHERE created_at < :cutoff"


@dataclass
class PruneResult:
    """Rows removed (or, in a dry run, removable) per table; ``stopped`` when interrupted."""

    removed: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    stopped: bool = False
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.removed.values())


class Busy(Exception):
    """Another process is pruning this schema right now."""


def prune(
    rt: Any,
    older_than: timedelta,
    *,
    dry_run: bool = False,
    archive: bool = False,
    batch_size: int = BATCH_SIZE,
    pause: float = PAUSE,
    stop: threading.Event | None = None,
    progress: Callable[[str, int], None] | None = None,
    wait_for_lock: bool = False,
) -> PruneResult:
    """Remove (``archive``: archive, then remove) history older than ``older_than``; see the
    module's docstring for what goes. Each batch is its own short transaction. ``progress(table,
    rows so far)`` is called after every batch; ``stop`` ends the run between batches. Raises
    :class:`Busy` when another process holds this schema's prune lock (unless
    ``wait_for_lock``)."""
    from dripdrop.errors import ValidationError

    if not isinstance(older_than, timedelta) or older_than <= timedelta(0):
        raise ValidationError.single("older_than", "must be a positive duration, like 90 days")
    if not isinstance(batch_size, int) or not 1 <= batch_size <= 100_000:
        raise ValidationError.single("batch_size", "must be a whole number from 1 to 100000")
    started = time.monotonic()
    cutoff = rt.now() - older_than
    result = PruneResult(dry_run=dry_run)
    with rt.engine.connect() as conn:
        if not _lock(conn, rt.schema, wait=wait_for_lock):
            raise Busy(f"another process is pruning schema {rt.schema!r}")
        try:
            for target in TARGETS:
                n = _prune_table(
                    conn, rt, target, cutoff, dry_run, archive, batch_size, pause, stop, progress
                )
                result.removed[target.table] = n
                if stop is not None and stop.is_set():
                    result.stopped = True
                    break
            if not result.stopped:
                # Past their 24 hours keys answer nothing, whatever the retention.
                key_cutoff = rt.now() - IDEMPOTENCY_TTL
                result.removed["idempotency_keys"] = _prune_keys(
                    conn, rt, key_cutoff, dry_run, batch_size, pause, stop, progress
                )
        finally:
            _unlock(conn, rt.schema)
    result.seconds = time.monotonic() - started
    if result.total and not dry_run:
        log.info(
            "pruned %d row(s) older than %s",
            result.total,
            cutoff.isoformat(),
            extra={"rows": result.total},
        )
    return result


def _lock(conn: Connection, schema: str, *, wait: bool) -> bool:
    fn = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
    got = conn.execute(
        text(f"SELECT {fn}(:ns, hashtext(:schema))"), {"ns": _LOCK_NAMESPACE, "schema": schema}
    ).scalar()
    conn.commit()
    return got is not False


def _unlock(conn: Connection, schema: str) -> None:
    try:
        conn.rollback()
        conn.execute(
            text("SELECT pg_advisory_unlock(:ns, hashtext(:schema))"),
            {"ns": _LOCK_NAMESPACE, "schema": schema},
        )
        conn.commit()
    except Exception:  # a lost connection lets go of the lock by itself
        log.debug("could not release the prune lock (the connection is gone)")


def _prune_table(
    conn: Connection,
    rt: Any,
    target: _Target,
    cutoff: datetime,
    dry_run: bool,
    archive: bool,
    batch_size: int,
    pause: float,
    stop: threading.Event | None,
    progress: Callable[[str, int], None] | None,
) -> int:
    from dripdrop.observability import metrics

    if not _exists(conn, rt.schema, target.table):
        return 0
    sql = _walk_sql(rt.schema, target, dry_run=dry_run, archive=archive)
    params: dict[str, Any] = {
        "after": uuid.UUID(int=0),
        "bound": uuid7_floor(cutoff),
        "cutoff": cutoff,
        "scan": batch_size,
    }
    total = 0
    while not (stop is not None and stop.is_set()):
        began = time.monotonic()
        with conn.begin():
            row = conn.execute(sql, params).one()
        if row.last is None:
            break
        params["after"] = row.last
        total += row.n
        if row.n and not dry_run:
            metrics.record_pruned(rt.schema, target.table, row.n)
        if progress is not None:
            progress(target.table, total)
        if row.n and not dry_run:
            _rest(pause, began)
    return total


def _prune_keys(
    conn: Connection,
    rt: Any,
    cutoff: datetime,
    dry_run: bool,
    batch_size: int,
    pause: float,
    stop: threading.Event | None,
    progress: Callable[[str, int], None] | None,
) -> int:
    s = f'"{rt.schema}"'
    if not _exists(conn, rt.schema, "idempotency_keys"):
        return 0
    if dry_run:
        with conn.begin():
            n = int(conn.execute(text(_IDEMPOTENCY_COUNT.format(s=s)), {"cutoff": cutoff}).scalar())
        if progress is not None:
            progress("idempotency_keys", n)
        return n
    total = 0
    sql = text(_IDEMPOTENCY.format(s=s))
    while not (stop is not None and stop.is_set()):
        began = time.monotonic()
        with conn.begin():
            n = int(conn.execute(sql, {"cutoff": cutoff, "scan": batch_size}).scalar())
        total += n
        if progress is not None:
            progress("idempotency_keys", total)
        if n < batch_size:
            break
        _rest(pause, began)
    return total


def _rest(pause: float, began: float) -> None:
    """After a batch that began at ``began`` (monotonic): REST_FACTOR times its time, at least
    ``pause`` (0: no rest at all)."""
    if pause:
        time.sleep(max(pause, REST_FACTOR * (time.monotonic() - began)))


def _exists(conn: Connection, schema: str, table: str) -> bool:
    with conn.begin():
        found = conn.execute(text("SELECT to_regclass(:name)"), {"name": f'"{schema}".{table}'})
        return found.scalar() is not None
