"""Sequences and their versions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from dripdrop.definitions.common import as_uuid
from dripdrop.records import Sequence, SequenceVersion, from_row
from dripdrop.web.auth import Principal, require
from dripdrop.web.encode import encode, parse_cursor
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

router = APIRouter(tags=["sequences"])
S = m.Sequence.__table__


class SequenceIn(Body):
    name: str
    key: str
    description: str | None = None
    hook_module: str | None = None
    active: bool = True
    metadata: dict[str, Any] | None = None
    tenant_key: str | None = None
    category: str | None = None


class SequenceChanges(Body):
    name: str | None = None
    description: str | None = None
    hook_module: str | None = None
    active: bool | None = None
    metadata: dict[str, Any] | None = None
    category: str | None = None


class VersionIn(Body):
    version: int | None = None
    active: bool = False
    name: str | None = None
    config: dict[str, Any] | None = None


class VersionChanges(Body):
    name: str | None = None
    config: dict[str, Any] | None = None


class Activation(Body):
    force: bool = False


def sequence(request: Request, who: Principal, sequence_id: str) -> Sequence:
    return who.owns(record_by_id(request, m.Sequence, Sequence, sequence_id, "sequence"))


def version(request: Request, who: Principal, version_id: str) -> SequenceVersion:
    found = record_by_id(request, m.SequenceVersion, SequenceVersion, version_id, "version")
    return who.owns(found)


@router.get("/sequences")
def list_sequences(
    request: Request,
    who: Principal = require("read"),
    active: bool | None = None,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: str | None = None,
) -> dict[str, Any]:
    """Sequences by key (a bound key sees its tenant's; others see every tenant's)."""
    after = parse_cursor(cursor, 2)
    stmt = select(S).order_by(S.c.key, S.c.id).limit(limit + 1)
    if who.bound:
        stmt = stmt.where(S.c.tenant_key == who.tenant_key)
    if active is not None:
        stmt = stmt.where(S.c.active == active)
    if after:
        stmt = stmt.where((S.c.key, S.c.id) > (after[0], as_uuid(after[1], "cursor")))
    items = [from_row(Sequence, r) for r in rows(request, stmt)]
    return page(items, limit, lambda s: (s.key, s.id))


@router.post("/sequences", status_code=201)
def create_sequence(body: SequenceIn, request: Request, who: Principal = require("write")) -> Any:
    """Create a sequence (a bound key creates it in its tenant)."""
    values = body.model_dump()
    values["tenant_key"] = who.tenant_for(values.get("tenant_key"))
    return encode(dd_of(request).create_sequence(**values))


@router.get("/sequences/{sequence_id}")
def get_sequence(sequence_id: str, request: Request, who: Principal = require("read")) -> Any:
    return encode(sequence(request, who, sequence_id))


@router.patch("/sequences/{sequence_id}")
def update_sequence(
    sequence_id: str, body: SequenceChanges, request: Request, who: Principal = require("write")
) -> Any:
    """Change the fields given (the others keep their values)."""
    found = sequence(request, who, sequence_id)
    changes = body.model_dump(exclude_unset=True)
    return encode(dd_of(request).update_sequence(found.id, **changes))


@router.delete("/sequences/{sequence_id}", status_code=204)
def delete_sequence(sequence_id: str, request: Request, who: Principal = require("write")) -> None:
    found = sequence(request, who, sequence_id)
    dd_of(request).delete_sequence(found.id)


@router.get("/sequences/{sequence_id}/versions")
def list_versions(sequence_id: str, request: Request, who: Principal = require("read")) -> Any:
    found = sequence(request, who, sequence_id)
    return {"items": encode(dd_of(request).list_versions(found.id)), "next_cursor": None}


@router.post("/sequences/{sequence_id}/versions", status_code=201)
def create_version(
    sequence_id: str, body: VersionIn, request: Request, who: Principal = require("write")
) -> Any:
    found = sequence(request, who, sequence_id)
    return encode(dd_of(request).create_sequence_version(found.id, **body.model_dump()))


@router.get("/versions/{version_id}")
def get_version(version_id: str, request: Request, who: Principal = require("read")) -> Any:
    return encode(version(request, who, version_id))


@router.patch("/versions/{version_id}")
def update_version(
    version_id: str, body: VersionChanges, request: Request, who: Principal = require("write")
) -> Any:
    found = version(request, who, version_id)
    return encode(
        dd_of(request).update_sequence_version(found.id, **body.model_dump(exclude_unset=True))
    )


@router.post("/versions/{version_id}/activate")
def activate_version(
    version_id: str,
    request: Request,
    body: Activation | None = None,
    who: Principal = require("write"),
) -> Any:
    """Make the version active; 422 listing the problems when it cannot deliver (unless
    ``{"force": true}``)."""
    found = version(request, who, version_id)
    force = body.force if body else False
    return encode(dd_of(request).activate_version(found.id, force=force))


@router.post("/versions/{version_id}/deactivate")
def deactivate_version(version_id: str, request: Request, who: Principal = require("write")) -> Any:
    found = version(request, who, version_id)
    return encode(dd_of(request).deactivate_version(found.id))


@router.get("/versions/{version_id}/check")
def check_version(version_id: str, request: Request, who: Principal = require("read")) -> Any:
    """What would make this version's sends fail (``{"problems": [...]}``)."""
    found = version(request, who, version_id)
    return {"problems": encode(dd_of(request).check_version(found.id))}
