"""Rendering pages: one Jinja2 environment (autoescaped) over the package's templates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from dripdrop.web.dashboard.words import condition_in_words, timing_in_words

HERE = Path(__file__).parent
NAV = (
    ("overview", "Overview", "/"),
    ("sequences", "Sequences", "/sequences"),
    ("enrollments", "Enrollments", "/enrollments"),
    ("executions", "Executions", "/executions"),
    ("adapters", "Adapters", "/adapters"),
    ("hooks", "HTTP hooks", "/hooks"),
    ("analytics", "Analytics", "/analytics"),
    ("template_builder", "Template builder", "/template-builder"),
)


def _pretty(value: Any) -> str:
    """JSON for people: indented, keys as stored."""
    if value is None:
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)


def _when(value: Any) -> str:
    if not isinstance(value, datetime):
        return "" if value is None else str(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(value: Any) -> str:
    """A short duration: 42 s, 3 min, 5 h, 2 d."""
    if value is None:
        return "—"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if abs(seconds) >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters.update(
    pretty=_pretty,
    when=_when,
    duration=_duration,
    timing_words=timing_in_words,
    condition_words=condition_in_words,
)


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A rendered template with what every page needs (base path, CSRF token, the nav, the
    tenant a bound session is limited to)."""
    session = getattr(request.state, "session", None)
    who = getattr(request.state, "who", None)
    html = env.get_template(template).render(
        request=request,
        base=(request.scope.get("root_path") or "").rstrip("/"),
        csrf=session.csrf if session else "",
        nav=NAV,
        hosted=request.app.state.authorize is not None,
        tenant=who.tenant_key if who is not None and who.bound else None,
        **context,
    )
    return HTMLResponse(html, status_code=status)


def error_page(
    request: Request,
    status: int,
    title: str,
    detail: str,
    errors: dict[str, list[str]] | None = None,
) -> HTMLResponse:
    template = "_error.html" if request.headers.get("hx-request") else "error.html"
    return page(
        request, template, status, title=title, detail=detail, errors=errors or {}, section=None
    )
