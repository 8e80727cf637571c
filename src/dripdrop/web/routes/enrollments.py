"""REST routes: enrollments (single, bulk NDJSON, idempotent), events."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["enrollments"])
