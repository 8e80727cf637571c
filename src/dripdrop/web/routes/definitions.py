"""REST routes: steps, conditions, channel adapters, HTTP hooks."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["definitions"])
