"""Template preview: a step rendered with sample data, as its channel would send it.

An email's HTML is served by its own URL into a sandboxed iframe (no scripts, a unique origin)
with a policy that lets the email's inline styles apply and nothing else load; SMS text comes
with its segment count.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from dripdrop.channels.fields import STEP_SETTINGS
from dripdrop.errors import DripDropError, ValidationError
from dripdrop.templates.check import sms_segments
from dripdrop.web.dashboard.pages.common import Form, router, run, step_of
from dripdrop.web.dashboard.render import page
from dripdrop.web.dashboard.security import with_headers

pages = router()
#: The email iframe's own policy: its inline styles and images over https/data, nothing else.
EMAIL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; font-src https: data:; "
    "frame-ancestors 'self'; sandbox"
)
MAX_SAMPLE = 20_000


def _context(step: Any, data: dict[str, Any]) -> dict[str, Any]:
    """What a template sees at send time (see engine.context.base_context), from sample data."""
    ctx = dict(data)
    ctx.update(
        subscriber_id="preview",
        subscriber_type="Preview",
        enrollment_id="preview",
        step_key=step.key,
    )
    ctx.setdefault("data", data)
    return ctx


def _render(step: Any, data: dict[str, Any]) -> dict[str, Any]:
    from dripdrop.templates.render import render_config

    config = {k: v for k, v in (step.config or {}).items() if k not in STEP_SETTINGS}
    engine = (step.config or {}).get("template_engine") or "liquid"
    return render_config(config, _context(step, data), engine, channel=step.channel)


def _sample(raw: str) -> dict[str, Any]:
    if len(raw) > MAX_SAMPLE:
        raise ValidationError.single("data", f"sample data above {MAX_SAMPLE} characters")
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise ValidationError.single("data", f"is not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValidationError.single("data", "must be a JSON object")
    return data


@pages.post("/steps/{step_id}/preview")
async def preview(request: Request, step_id: str) -> Response:
    step = await step_of(request, step_id)
    form = await Form.of(request)
    raw = form.get("data")
    rendered, error, segments = None, None, None
    if step.template_type != "inline":
        error = f"this step's content comes from its {step.template_type} template at send time"
    else:
        try:
            rendered = await run(_render, step, _sample(raw))
        except ValidationError as exc:
            error = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.errors.items())
        except DripDropError as exc:
            error = str(exc)
    if rendered and step.channel == "sms":
        segments = sms_segments(str(rendered.get("body") or ""))
    return page(
        request,
        "_preview.html",
        step=step,
        rendered=rendered,
        error=error,
        segments=segments,
        sample=raw,
    )


@pages.get("/steps/{step_id}/preview.html")
async def email_html(request: Request, step_id: str) -> Response:
    """The rendered email body alone, for the preview iframe."""
    step = await step_of(request, step_id)
    try:
        body = str(
            (await run(_render, step, _sample(request.query_params.get("data", "")))).get("body")
            or ""
        )
    except DripDropError as exc:
        body = f"<p>Could not render: {type(exc).__name__}</p>"
    response = HTMLResponse(body)
    response.headers["Content-Security-Policy"] = EMAIL_CSP
    return with_headers(response, frame_self=True)
