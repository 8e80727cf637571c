"""REST routes: suppressions (``/suppressions``).

Listed newest first, in keyset pages on (inserted_at, id). A key bound to a tenant sees, adds and
removes only its tenant's rows (global rows are the operator's); other keys see every tenant's,
or one with ``tenant_key=``. Recipients are normalised as ``dd.suppress`` does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request

from dripdrop.definitions.common import as_uuid
from dripdrop.definitions.suppressions import (
    CHANNELS,
    REASONS,
    suppressions_query,
)
from dripdrop.errors import NotFound, ValidationError
from dripdrop.records import Suppression, from_row
from dripdrop.web.auth import Principal, require
from dripdrop.web.encode import encode, parse_cursor
from dripdrop.web.routes.common import DEFAULT_LIMIT, MAX_LIMIT, Body, dd_of, m, page, rows

router = APIRouter(tags=["suppressions"])
T = m.Suppression.__table__


class SuppressionIn(Body):
    channel: str
    recipient: str
    reason: str = "manual"
    tenant_key: str | None = None
    category: str | None = None


def _before(cursor: str | None) -> tuple[datetime, Any] | None:
    after = parse_cursor(cursor, 2)
    if after is None:
        return None
    try:
        return datetime.fromisoformat(str(after[0])), as_uuid(after[1], "cursor")
    except (TypeError, ValueError):
        raise ValidationError.single("cursor", "is not a cursor this list returned") from None


@router.get("/suppressions")
def list_suppressions(
    request: Request,
    who: Principal = require("read"),
    channel: str | None = None,
    reason: str | None = None,
    tenant_key: str | None = None,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: str | None = None,
) -> dict[str, Any]:
    """Suppressions newest first, optionally of one channel, reason or tenant."""
    errors: dict[str, list[str]] = {}
    if channel is not None and channel not in CHANNELS:
        errors["channel"] = [f"must be one of {', '.join(CHANNELS)}"]
    if reason is not None and reason not in REASONS:
        errors["reason"] = [f"must be one of {', '.join(REASONS)}"]
    if errors:
        raise ValidationError(errors)
    scoped = who.bound or tenant_key is not None
    stmt = suppressions_query(
        channel=channel,
        reason=reason,
        tenant_key=who.tenant_for(tenant_key) if scoped else None,
        all_tenants=not scoped,
        before=_before(cursor),
    ).limit(limit + 1)
    items = [from_row(Suppression, r) for r in rows(request, stmt)]
    return page(items, limit, lambda s: (s.inserted_at, s.id))


@router.post("/suppressions", status_code=201)
def create_suppression(
    body: SuppressionIn, request: Request, who: Principal = require("write")
) -> Any:
    """Suppress a recipient (idempotent: a repeat answers the same row)."""
    values = body.model_dump()
    values["tenant_key"] = who.tenant_for(values.get("tenant_key"))
    return encode(dd_of(request).suppress(**values))


@router.delete("/suppressions/{suppression_id}", status_code=204)
def delete_suppression(
    suppression_id: str, request: Request, who: Principal = require("write")
) -> None:
    """Remove one suppression (404 for another tenant's)."""
    from dripdrop.definitions.common import get_row
    from dripdrop.definitions.suppressions import delete_suppression as delete_row

    dd = dd_of(request)
    with dd.runtime.engine.begin() as conn:
        found = from_row(Suppression, get_row(conn, T, suppression_id, "suppression"))
        who.owns(found)
        if delete_row(dd.runtime, conn, found.id) is None:
            raise NotFound(f"suppression {suppression_id} not found")
