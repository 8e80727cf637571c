"""Shared by the route modules: the instance, records by id, pages of lists."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from dripdrop.db import models as m
from dripdrop.definitions.common import get_row
from dripdrop.records import from_row
from dripdrop.web.encode import cursor_of, encode

#: Page sizes of every list: ``limit`` from 1 to MAX_LIMIT, DEFAULT_LIMIT when absent.
DEFAULT_LIMIT, MAX_LIMIT = 50, 500


class Body(BaseModel):
    """Request bodies: unknown fields are refused (a misspelt field must not be ignored)."""

    model_config = ConfigDict(extra="forbid")


def dd_of(request: Request) -> Any:
    return request.app.state.dd


def record_by_id(request: Request, model: Any, record_type: Any, id_: Any, what: str) -> Any:
    """The record of ``model``'s row with this id (NotFound / ValidationError as the API)."""
    dd = dd_of(request)
    with dd.runtime.engine.begin() as conn:
        return from_row(record_type, get_row(conn, model.__table__, id_, what))


def rows(request: Request, statement: Any) -> list[Any]:
    dd = dd_of(request)
    with dd.runtime.engine.begin() as conn:
        return list(conn.execute(statement))


def page(items: Sequence[Any], limit: int, key: Callable[[Any], tuple[Any, ...]]) -> dict[str, Any]:
    """``{items, next_cursor}`` from ``limit + 1`` fetched items (the extra one says there is a
    next page; its cursor is the sort key of the last item shown)."""
    shown = list(items[:limit])
    more = len(items) > limit
    return {
        "items": encode(shown),
        "next_cursor": cursor_of(*key(shown[-1])) if more and shown else None,
    }


__all__ = ["Body", "dd_of", "m", "page", "record_by_id", "rows", "select"]
