"""REST routes: executions, notifications (and their SSE stream), simulate."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["executions"])
