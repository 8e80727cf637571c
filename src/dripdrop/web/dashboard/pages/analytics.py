"""Analytics: per sequence and version, the funnel (enrolled → each step → completed / exited /
cancelled) as SVG bars, drop-off per step, and delivery performance per channel and per
provider over a chosen time range — all from ``sequence_analytics`` (the hourly and daily
rollups, never the executions table)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from dripdrop.errors import NotFound, ValidationError
from dripdrop.web.dashboard.pages.common import call, router, tenant
from dripdrop.web.dashboard.render import page

pages = router()

#: The time range picker's presets (the last N hours up to now).
RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
RANGES["90d"] = timedelta(days=90)
DEFAULT_RANGE = "30d"


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def chosen_range(query: Any, now: datetime) -> tuple[str, datetime, datetime | None]:
    """(preset or "custom", since, until) from the query: ``range`` (a preset: until None, so
    the current hour is in), or ``from`` / ``to`` (UTC days, both included)."""
    first, last = _day(query.get("from")), _day(query.get("to"))
    if first or last:
        until = (
            datetime.combine(last + timedelta(days=1), time(), UTC)
            if last
            else now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        )
        since = datetime.combine(first, time(), UTC) if first else until - RANGES[DEFAULT_RANGE]
        return "custom", since, until
    preset = query.get("range") if query.get("range") in RANGES else DEFAULT_RANGE
    return preset, now - RANGES[preset], None


def funnel_rows(report: Any) -> list[dict[str, Any]]:
    """The funnel's bars: enrolled, each step's ``reached``, then how enrollments ended; each
    with its share of the enrolled (the bar's width, in per cent)."""
    base = report.enrolled or 0
    stages = [("Enrolled", "enrolled", report.enrolled)]
    stages += [(f"{s.position}. {s.name}", "step", s.reached) for s in report.steps]
    stages += [
        ("Completed", "completed", report.completed),
        ("Exited", "exited", report.exited),
        ("Cancelled", "cancelled", report.cancelled),
    ]
    return [
        {
            "label": label,
            "kind": kind,
            "count": count,
            "share": round(100 * count / base, 1) if base else 0.0,
            "width": min(100.0, 100 * count / base) if base else 0.0,
        }
        for label, kind, count in stages
    ]


@pages.get("/analytics")
async def analytics(request: Request) -> Response:
    q = request.query_params
    sequences = await call(request, "list_sequences", tenant_key=tenant(request))
    context: dict[str, Any] = {
        "section": "analytics",
        "sequences": sequences,
        "ranges": list(RANGES),
        "q": q,
        "report": None,
        "error": None,
    }
    if not sequences:
        return page(request, "analytics.html", **context)
    by_id = {str(s.id): s for s in sequences}
    chosen = by_id.get(q.get("sequence", "")) or sequences[0]
    # The engine's clock: the rollups' hours are on it (tests and simulations move it).
    preset, since, until = chosen_range(q, request.app.state.dd.runtime.now())
    context.update(sequence=chosen, preset=preset, since=since, until=until)
    try:
        report = await call(
            request,
            "sequence_analytics",
            chosen.id,
            tenant_key=chosen.tenant_key,
            version_id=q.get("version") or None,
            since=since,
            until=until,
        )
    except (ValidationError, NotFound) as exc:
        context["error"] = str(exc)
        return page(request, "analytics.html", 422, **context)
    context.update(report=report, funnel=funnel_rows(report))
    return page(request, "analytics.html", **context)
