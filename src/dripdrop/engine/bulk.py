"""Bulk enrollment, streamed in batches with COPY.

Each batch is COPYed straight into ``enrollments`` and ``step_executions`` — as fast as the
tables' indexes allow. When a batch collides with existing enrollments (a unique violation), that
batch alone is redone through a temporary table with ``ON CONFLICT DO NOTHING``, so subscribers
already enrolled are left untouched.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection, text

try:
    from sqlalchemy.util import await_
except ImportError:  # SQLAlchemy 2.0 names it await_only
    from sqlalchemy.util import await_only as await_

from dripdrop.definitions.inputs import (
    check_int,
    describe,
    json_text,
    unknown_keys,
)
from dripdrop.definitions.sequences import get_sequence_with_active_version
from dripdrop.engine.enrollments import active_version_id, subscriber_key
from dripdrop.engine.notify import wake_workers
from dripdrop.engine.planning import plan_step
from dripdrop.errors import ValidationError
from dripdrop.ids import new_id_strings

BATCH = 10_000
_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
ENROLLMENT_COLUMNS = (
    "id, sequence_id, sequence_version_id, subscriber_type, subscriber_id, "
    "state, current_step_id, started_at, completed_at, data, metadata, "
    "tenant_key"
)

# First executions are made by the server from the new enrollment ids. The ids travel as one
# comma-joined text each: psycopg's Python list dumper costs more than the insert's parsing.
INSERT_FIRST_EXECUTIONS = """
INSERT INTO {s}.step_executions (id, enrollment_id, step_id, state, scheduled_for, waiting_for,
    channel, idempotency_key, tenant_key)
SELECT x.id, x.enrollment_id, :step, 'scheduled', CAST(:due AS timestamptz), :waiting, :channel,
    x.id::text, :tenant
FROM unnest(CAST(string_to_array(:execution_ids, ',') AS uuid[]),
            CAST(string_to_array(:ids, ',') AS uuid[])) AS x(id, enrollment_id)
"""

INSERT_NEW = """
INSERT INTO {s}.enrollments ({cols})
SELECT {cols} FROM _dd_bulk
ON CONFLICT (sequence_id, subscriber_type, subscriber_id) DO NOTHING
RETURNING id
"""


def _field(value: Any) -> str:
    """One value in COPY text format (\\N is NULL)."""
    if value is None:
        return "\\N"
    return str(value).translate(_ESCAPE)


ITEM_KEYS = frozenset({"subscriber", "data", "metadata"})


def _items(items: Iterable[Any]) -> Iterator[tuple[str, str, str, str]]:
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValidationError.single(f"items.{n}", 'must be a dict like {"subscriber": ...}')
        try:
            if len(item) > len(ITEM_KEYS) or not ITEM_KEYS.issuperset(item):
                raise ValidationError(unknown_keys(item, ITEM_KEYS, ""))
            stype, sid = subscriber_key(item.get("subscriber"))
            data, meta = item.get("data"), item.get("metadata")
            data_json = json_text(data, "data") if data else "{}"
            meta_json = json_text(meta, "metadata") if meta else "{}"
        except ValidationError as exc:
            raise ValidationError({f"items.{n}.{k}": v for k, v in exc.errors.items()}) from None
        yield stype, sid, data_json, meta_json


@contextmanager
def copy_in(raw: Any, statement: str) -> Iterator[Callable[[str], Any]]:
    """``COPY ... FROM STDIN`` on the driver connection; yields its ``write``.

    Under AsyncDripDrop the operation runs inside ``AsyncConnection.run_sync``, where the driver
    connection is a psycopg AsyncConnection: its cursor and copy are driven with ``await_`` from
    that greenlet. The sync connection is used as is (the benchmarked path)."""
    if not isinstance(raw, psycopg.AsyncConnection):
        with raw.cursor() as cur, cur.copy(statement) as copy:
            yield copy.write
        return
    cur = raw.cursor()
    try:
        manager = cur.copy(statement)
        acopy = await_(manager.__aenter__())
        try:
            yield lambda data: await_(acopy.write(data))
        except BaseException as exc:
            # Ends the COPY with the error (psycopg sends CopyFail), as ``async with`` would.
            if not await_(manager.__aexit__(type(exc), exc, exc.__traceback__)):
                raise
        else:
            await_(manager.__aexit__(None, None, None))
    finally:
        await_(cur.close())


def _copy(raw: Any, table: str, columns: str, lines: list[str], chunk: int = 2000) -> None:
    # Written in chunks so the server indexes rows while the rest is still being sent.
    with copy_in(raw, f"COPY {table} ({columns}) FROM STDIN") as write:
        for start in range(0, len(lines), chunk):
            write("".join(lines[start : start + chunk]))


def enroll_many(
    rt: Any,
    conn: Connection,
    sequence_key: str,
    items: Iterable[dict[str, Any]],
    *,
    tenant_key: str | None = None,
    batch_size: int = BATCH,
) -> int:
    """Enroll many subscribers (``[{"subscriber": {...}, "data": {...}}, ...]``, any iterable,
    streamed in batches). Subscribers already enrolled are left as they are. Returns how many
    were enrolled. Runs in the caller's transaction."""
    check_int(batch_size, "batch_size", minimum=1, maximum=100_000)
    if isinstance(items, str | bytes | dict) or not isinstance(items, Iterable):
        raise ValidationError.single(
            "items", f"must be an iterable of dicts with a subscriber, not {describe(items)}"
        )
    seq = get_sequence_with_active_version(conn, sequence_key, tenant_key)
    version_id = active_version_id(seq)
    first = rt.defs.version(conn, version_id).first_step()
    now = rt.now()
    plan = plan_step(first, enrollment_start=now, previous_done=None) if first else None
    s = f'"{rt.schema}"'
    raw = conn.connection.driver_connection
    # The parts of every row that do not vary, pre-rendered once.
    head = f"\t{seq.id}\t{version_id}\t"
    state = "active" if first else "completed"
    tail = (
        f"\t{state}\t{_field(first.id if first else None)}\t{now.isoformat()}\t"
        f"{_field(None if first else now.isoformat())}\t"
    )
    tenant = _field(seq.tenant_key)
    total = 0
    source = _items(items)
    while True:
        # Each batch streams into COPY in slices, so the server indexes one slice while the next
        # is being prepared here (two cores at work instead of one after the other).
        ids: list[str] = []
        lines: list[str] = []
        try:
            with (
                conn.begin_nested(),
                copy_in(raw, f"COPY {s}.enrollments ({ENROLLMENT_COLUMNS}) FROM STDIN") as write,
            ):
                while len(ids) < batch_size:
                    chunk = list(itertools.islice(source, min(1000, batch_size - len(ids))))
                    if not chunk:
                        break
                    chunk_ids = new_id_strings(len(chunk))
                    chunk_lines = [
                        f"{i}{head}{_field(st)}\t{_field(sid)}{tail}{d.translate(_ESCAPE)}\t"
                        f"{m.translate(_ESCAPE)}\t{tenant}\n"
                        for i, (st, sid, d, m) in zip(chunk_ids, chunk, strict=True)
                    ]
                    write("".join(chunk_lines))
                    ids += chunk_ids
                    lines += chunk_lines
            created = ids
        except Exception as exc:  # a collision: redo this batch skipping existing enrollments
            if not isinstance(getattr(exc, "orig", exc), psycopg.errors.UniqueViolation):
                raise
            created = _insert_skipping_existing(conn, raw, s, lines)
        if not ids:
            break
        total += len(created)
        if first is not None and plan is not None and created:
            conn.execute(
                text(INSERT_FIRST_EXECUTIONS.format(s=s)),
                {
                    "step": first.id,
                    "due": plan.scheduled_for,
                    "waiting": plan.waiting_for,
                    "channel": first.channel,
                    "tenant": seq.tenant_key,
                    "ids": ",".join(created),
                    "execution_ids": ",".join(new_id_strings(len(created))),
                },
            )
    if plan is not None and total and plan.scheduled_for is not None and plan.scheduled_for <= now:
        wake_workers(conn, rt.schema)
    return total


def _insert_skipping_existing(conn: Connection, raw: Any, s: str, lines: list[str]) -> list[str]:
    conn.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS _dd_bulk (LIKE {s}.enrollments "
            "INCLUDING DEFAULTS) ON COMMIT DROP"
        )
    )
    conn.execute(text("TRUNCATE _dd_bulk"))
    _copy(raw, "_dd_bulk", ENROLLMENT_COLUMNS, lines)
    rows = conn.execute(text(INSERT_NEW.format(s=s, cols=ENROLLMENT_COLUMNS))).scalars().all()
    return [str(r) for r in rows]
