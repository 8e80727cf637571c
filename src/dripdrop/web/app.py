"""``create_app(dd)``: the REST API (and, later, the dashboard) as one ASGI app."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from dripdrop.web import ops_routes, problems
from dripdrop.web.routes import ROUTERS

API_PREFIX = "/api/v1"
#: Request bodies above this are refused with 413 before they are read whole.
MAX_BODY_BYTES = 10 * 1024 * 1024


class BodyLimit:
    """Refuses a request body larger than ``limit`` bytes (declared or streamed) with 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await problems.problem(413, f"request body above {self.limit} bytes")(
                scope, receive, send
            )
            return
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except TooLarge:
            await problems.problem(413, f"request body above {self.limit} bytes")(
                scope, receive, send
            )


PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details; `errors` (field → messages) on 422",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["type", "title", "status", "detail"],
}
_ERRORS = {
    "401": "missing, invalid or revoked API key",
    "403": "the API key lacks the scope",
    "404": "not found (or another tenant's)",
    "422": "invalid input: `errors` names each field",
}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the errors the app really answers: problem+json, not FastAPI's
    own validation-error shape."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    # An API key is a Bearer token: declared, so the docs page offers "Authorize".
    doc["components"]["securitySchemes"] = {
        "apiKey": {"type": "http", "scheme": "bearer", "description": "a DripDrop API key"}
    }
    doc["security"] = [{"apiKey": []}]
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in doc.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if path == "/health":  # no key, no input
                operation["security"] = []
                continue
            for code, description in _ERRORS.items():
                responses[code] = {"description": description, "content": problem}
    app.openapi_schema = doc
    return doc


class TooLarge(Exception):
    """A streamed body passed the limit."""


def _serve_docs(app: FastAPI) -> None:
    """Swagger UI (5.x: it reads OpenAPI 3.1) at ``/api/v1/docs`` with its JS and CSS from the
    ``swagger-ui-py`` package (FastAPI's default page loads them from a CDN, which a locked-down
    network blocks)."""
    try:
        import swagger_ui
    except ImportError:  # the page is a convenience; the document itself is always served
        return
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from starlette.staticfiles import StaticFiles

    assets = f"{API_PREFIX}/docs/assets"
    static = Path(swagger_ui.__file__).parent / "static"
    app.mount(assets, StaticFiles(directory=static), name="docs-assets")

    @app.get(f"{API_PREFIX}/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{API_PREFIX}/openapi.json",
            title="DripDrop API",
            swagger_js_url=f"{root}{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{assets}/swagger-ui.css",
            swagger_favicon_url=f"{root}{assets}/favicon-32x32.png",
        )


def create_app(
    dd: Any,
    authorize: Callable[[Request], Any] | None = None,
    *,
    cors_origins: list[str] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    metrics_token: str | None = None,
    metrics_public: bool = False,
) -> FastAPI:
    """The ASGI app of ``dd``: the REST API under ``/api/v1``, its OpenAPI document at
    ``/api/v1/openapi.json`` (browsable at ``/api/v1/docs``) and ``/health``.

    ``authorize(request)`` (sync or async, truthy to allow) replaces API keys when the app is
    mounted inside a host app that has its own login: requests it allows act with every scope
    on every tenant; requests with a Bearer token are still checked as keys. CORS is off unless
    ``cors_origins`` lists origins.
    ``/metrics`` needs a ``read`` key or ``metrics_token`` unless ``metrics_public`` (see
    dripdrop.web.ops_routes).
    """
    app = FastAPI(
        title="DripDrop",
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served below from files in the wheel, never from a CDN
        redoc_url=None,
    )
    app.state.dd = dd
    app.state.authorize = authorize
    app.state.key_cache = {}  # token hash → (checked at, key): see auth.KEY_CACHE_SECONDS
    problems.install(app)
    # Analytics first: its /adapters/health must not be taken for /adapters/{adapter_id}.
    from dripdrop.web.routes import analytics as analytics_routes

    app.include_router(analytics_routes.router, prefix=API_PREFIX)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    from dripdrop.web.routes import templates as template_routes

    app.include_router(template_routes.router, prefix=API_PREFIX)
    # A pydantic-ai Model object the template builder uses instead of a provider (docs/ai.md).
    app.state.template_model = None
    # Provider event webhooks: at the root (the URL set in each provider's console), no API key.
    from dripdrop.web.routes import inbound

    app.include_router(inbound.router)
    # Suppressions (REST, API key) and one-click unsubscribe pages (public: the signed token).
    from dripdrop.web.routes import suppressions, unsubscribe

    app.include_router(suppressions.router, prefix=API_PREFIX)
    app.include_router(unsubscribe.router)
    # Flow control: transitions, their conditions, split branch counts.
    from dripdrop.web.routes import flow as flow_routes

    app.include_router(flow_routes.router, prefix=API_PREFIX)

    _serve_docs(app)

    # /health (database, schedule lag; no key) and /metrics (Prometheus; see ops_routes).
    ops_routes.install(app, metrics_token=metrics_token, metrics_public=metrics_public)
    # The dashboard: HTML pages at the app's root (see dripdrop.web.dashboard, docs/dashboard.md).
    from dripdrop.web import dashboard

    dashboard.install(app)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    return app
