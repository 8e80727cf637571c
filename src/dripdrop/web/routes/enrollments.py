"""REST routes: enrollments (single, bulk NDJSON, idempotent), events.

``POST /enrollments`` takes an optional ``Idempotency-Key`` header: the key, the caller's scope
(its API key), a hash of the request and the answer are stored in ``idempotency_keys`` in the
same transaction as the enrollment. A repeat within 24 hours with the same body gets the first
answer again (``Idempotent-Replayed: true``) and enrolls no one; the same key with another body
is a 422. Two concurrent requests with one key: the second's insert of the key waits on the
first's (primary key), then reads and returns its answer. Failures (404, 409, 422) store
nothing, so a repeat after fixing the cause runs again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from dripdrop.definitions.common import as_uuid
from dripdrop.definitions.sequences import get_sequence_row
from dripdrop.engine.bulk import _items
from dripdrop.errors import ValidationError
from dripdrop.records import Enrollment, Sequence, from_row
from dripdrop.web.auth import Principal, require
from dripdrop.web.encode import encode, parse_cursor
from dripdrop.web.problems import problem
from dripdrop.web.routes.common import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Body,
    dd_of,
    m,
    page,
    record_by_id,
    rows,
    select,
)

router = APIRouter(tags=["enrollments"])
E = m.Enrollment.__table__
IK = m.IdempotencyKey.__table__

#: How long an idempotency key's answer is replayed.
IDEMPOTENCY_TTL = timedelta(hours=24)
#: Good NDJSON lines are enrolled in batches of this many (one transaction each).
BULK_BATCH = 5_000
#: At most this many bad lines are described in a bulk answer (``error_count`` has them all).
MAX_BULK_ERRORS = 1_000
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
STATES = ("active", "paused", "completed", "cancelled")


class Subscriber(Body):
    type: str
    id: str | int


class EnrollmentIn(Body):
    sequence_key: str
    subscriber: Subscriber
    data: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    on_conflict: str = "raise"
    tenant_key: str | None = None


class EventIn(Body):
    event_key: str
    event_data: dict[str, Any] | None = None
    event_type: str = "custom"


class SubscriberEventIn(EventIn):
    subscriber: Subscriber
    tenant_key: str | None = None


def enrollment(request: Request, who: Principal, enrollment_id: str) -> Enrollment:
    found = record_by_id(request, m.Enrollment, Enrollment, enrollment_id, "enrollment")
    return who.owns(found)


# --- single enrollments, idempotent ------------------------------------------------------


def _scope(who: Principal) -> str:
    """Whose keys these are: the API key's, or the host's when the app is mounted."""
    if who.key_id is not None:
        return f"key:{who.key_id}"
    return f"tenant:{who.tenant_key}" if who.bound else "host"


def _check_key(key: str) -> str:
    if not key or len(key) > 255 or not key.isprintable():
        raise ValidationError.single(
            "Idempotency-Key", "must be 1 to 255 printable characters (a UUID, say)"
        )
    return key


def _idempotent_enroll(request: Request, who: Principal, key: str, values: dict[str, Any]) -> Any:
    dd = dd_of(request)
    rt = dd.runtime
    scope = _scope(who)
    digest = hashlib.sha256(
        json.dumps(encode(values), sort_keys=True, separators=(",", ":")).encode()
    ).digest()
    with rt.engine.begin() as conn:
        now = rt.now()
        cutoff = now - IDEMPOTENCY_TTL
        # Claim the key. A concurrent holder of the same key makes this wait until it commits
        # (then nothing is returned: its answer is read below) or rolls back (then ours).
        claim = pg_insert(IK).values(
            scope=scope, key=key, request_hash=digest, status=0, response={}, created_at=now
        )
        claimed = conn.execute(
            claim.on_conflict_do_update(
                index_elements=[IK.c.scope, IK.c.key],
                set_={
                    "request_hash": claim.excluded.request_hash,
                    "status": 0,
                    "response": {},
                    "created_at": claim.excluded.created_at,
                },
                where=IK.c.created_at < cutoff,  # an expired key is free again
            ).returning(IK.c.key)
        ).first()
        if claimed is None:
            stored = conn.execute(
                select(IK.c.request_hash, IK.c.status, IK.c.response).where(
                    IK.c.scope == scope, IK.c.key == key
                )
            ).one()
            if bytes(stored.request_hash) != digest:
                raise ValidationError.single(
                    "Idempotency-Key", "was already used with a different request body"
                )
            return JSONResponse(
                stored.response,
                status_code=stored.status,
                headers={"Idempotent-Replayed": "true"},
            )
        answer = encode(dd.enroll(**values, connection=conn))
        conn.execute(
            update(IK)
            .where(IK.c.scope == scope, IK.c.key == key)
            .values(status=201, response=answer)
        )
        # Expired keys of this caller go as it makes new ones (the index on created_at
        # finds them; other callers' are reused or purged by their own requests).
        conn.execute(delete(IK).where(IK.c.scope == scope, IK.c.created_at < cutoff))
    return JSONResponse(answer, status_code=201)


@router.post("/enrollments", status_code=201)
def create_enrollment(
    body: EnrollmentIn,
    request: Request,
    who: Principal = require("write"),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> Any:
    """Enroll a subscriber (409 when already enrolled, unless ``on_conflict`` says otherwise).
    With ``Idempotency-Key``, a repeat within 24 hours returns the first answer."""
    values = body.model_dump()
    values["tenant_key"] = who.tenant_for(values.get("tenant_key"))
    if idempotency_key is None:
        return JSONResponse(encode(dd_of(request).enroll(**values)), status_code=201)
    return _idempotent_enroll(request, who, _check_key(idempotency_key), values)


# --- bulk ---------------------------------------------------------------------------------


def _line_errors(raw: bytes) -> tuple[dict[str, Any] | None, dict[str, list[str]] | None]:
    """One NDJSON line: the item, or its errors (field → messages)."""
    try:
        item = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, {"line": ["is not valid JSON"]}
    try:
        next(_items([item]))
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for field, messages in exc.errors.items():
            name = field.removeprefix("items.0").removeprefix(".") or "line"
            errors.setdefault(name, []).extend(messages)
        return None, errors
    return item, None


@router.post(
    "/enrollments/bulk",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
async def bulk_enroll(
    request: Request,
    sequence_key: str = Query(...),
    tenant_key: str | None = None,
    who: Principal = require("write"),
) -> Any:
    """Enroll many subscribers from an NDJSON body (``application/x-ndjson``), one
    ``{"subscriber": {...}, "data": {...}}`` per line, streamed and enrolled in batches (each
    its own transaction). Bad lines are reported (``line`` counts from 1) and skipped; the
    subscribers already enrolled are left as they are. Answers ``{"enrolled", "errors"}``."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in NDJSON_TYPES:
        return problem(415, "send the subscribers as application/x-ndjson, one JSON per line")
    dd = dd_of(request)
    tenant = who.tenant_for(tenant_key)
    await run_in_threadpool(dd.get_sequence, sequence_key, tenant_key=tenant)  # 404 up front
    enrolled = 0
    errors: list[dict[str, Any]] = []
    error_count = 0
    batch: list[dict[str, Any]] = []
    line_no = 0

    async def flush() -> None:
        nonlocal enrolled, batch
        if batch:
            items, batch = batch, []
            enrolled += await run_in_threadpool(
                dd.enroll_many, sequence_key, items, tenant_key=tenant
            )

    def take(raw: bytes) -> None:
        nonlocal line_no, error_count
        line_no += 1
        if not raw.strip():
            return
        item, problems = _line_errors(raw)
        if problems is not None:
            error_count += 1
            if len(errors) < MAX_BULK_ERRORS:
                errors.append({"line": line_no, "errors": problems})
        else:
            batch.append(item)  # type: ignore[arg-type]

    pending = bytearray()
    async for chunk in request.stream():
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            take(bytes(pending[start:end]))
            start = end + 1
        del pending[:start]
        if len(batch) >= BULK_BATCH:
            await flush()
    if pending:
        take(bytes(pending))
    await flush()
    return {"enrolled": enrolled, "errors": errors, "error_count": error_count}


# --- reading ------------------------------------------------------------------------------


@router.get("/enrollments")
def list_enrollments(
    request: Request,
    who: Principal = require("read"),
    sequence_key: str | None = None,
    state: str | None = None,
    tenant_key: str | None = None,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: str | None = None,
) -> dict[str, Any]:
    """Enrollments in id order (ids are time-ordered: oldest first). The cursor is the last id
    shown, which never changes, so paging sees each enrollment once even while new ones are
    added (they come at the end). ``tenant_key`` picks the tenant of ``sequence_key``."""
    after = parse_cursor(cursor, 1)
    if state is not None and state not in STATES:
        raise ValidationError.single("state", f"must be one of {', '.join(STATES)}")
    stmt = select(E).order_by(E.c.id).limit(limit + 1)
    if who.bound:
        stmt = stmt.where(E.c.tenant_key == who.tenant_key)
    if sequence_key is not None:
        dd = dd_of(request)
        with dd.runtime.engine.begin() as conn:
            seq = get_sequence_row(conn, sequence_key, who.tenant_for(tenant_key))
        stmt = stmt.where(E.c.sequence_id == seq.id)
    if state is not None:
        stmt = stmt.where(E.c.state == state)
    if after:
        stmt = stmt.where(E.c.id > as_uuid(after[0], "cursor"))
    items = [from_row(Enrollment, r) for r in rows(request, stmt)]
    return page(items, limit, lambda e: (e.id,))


@router.get("/enrollments/{enrollment_id}")
def get_enrollment(enrollment_id: str, request: Request, who: Principal = require("read")) -> Any:
    return encode(enrollment(request, who, enrollment_id))


@router.get("/enrollments/{enrollment_id}/executions")
def enrollment_executions(
    enrollment_id: str, request: Request, who: Principal = require("read")
) -> Any:
    """The enrollment's executions, by scheduled time then step position."""
    found = enrollment(request, who, enrollment_id)
    return {"items": encode(dd_of(request).list_executions(found.id)), "next_cursor": None}


# --- changing -----------------------------------------------------------------------------


@router.post("/enrollments/{enrollment_id}/pause")
def pause_enrollment(
    enrollment_id: str, request: Request, who: Principal = require("write")
) -> Any:
    """Hold an active enrollment (422 when it is completed or cancelled)."""
    found = enrollment(request, who, enrollment_id)
    return encode(dd_of(request).pause_enrollment(found.id))


@router.post("/enrollments/{enrollment_id}/resume")
def resume_enrollment(
    enrollment_id: str, request: Request, who: Principal = require("write")
) -> Any:
    found = enrollment(request, who, enrollment_id)
    return encode(dd_of(request).resume_enrollment(found.id))


@router.post("/enrollments/{enrollment_id}/unenroll")
def unenroll(enrollment_id: str, request: Request, who: Principal = require("write")) -> Any:
    """Cancel the enrollment and its scheduled work (a finished one is returned as it is)."""
    found = enrollment(request, who, enrollment_id)
    seq = record_by_id(request, m.Sequence, Sequence, found.sequence_id, "sequence")
    return encode(
        dd_of(request).unenroll(
            seq.key, found.subscriber_type, found.subscriber_id, tenant_key=found.tenant_key
        )
    )


@router.post("/enrollments/{enrollment_id}/events", status_code=201)
def track_event(
    enrollment_id: str, body: EventIn, request: Request, who: Principal = require("write")
) -> Any:
    """Record an event on one enrollment (it may exit it or wake an event step)."""
    found = enrollment(request, who, enrollment_id)
    return encode(dd_of(request).track_event(found.id, **body.model_dump()))


@router.post("/events", status_code=201)
def track(body: SubscriberEventIn, request: Request, who: Principal = require("write")) -> Any:
    """Record an event on each of the subscriber's active or paused enrollments (of the
    caller's tenant); answers ``{"items": [events]}`` (empty when there are none)."""
    values = body.model_dump()
    values["tenant_key"] = who.tenant_for(values.get("tenant_key"))
    return {"items": encode(dd_of(request).track(**values)), "next_cursor": None}
