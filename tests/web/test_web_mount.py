"""create_app mounted in host apps, as docs/web.md shows: FastAPI/Starlette (``app.mount``),
Django (an ASGI dispatcher in front of ``get_asgi_application()``) and Flask (WSGI, through
a2wsgi's ASGIMiddleware and werkzeug's DispatcherMiddleware)."""

from __future__ import annotations

from typing import Any

import httpx2
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dripdrop.web import create_app


def test_mounted_in_fastapi_with_host_authorization(dd, admin) -> None:
    host = FastAPI()

    @host.get("/")
    def home() -> dict[str, str]:
        return {"app": "host"}

    # The host's own login decides (here: a header its auth middleware would have set).
    host.mount(
        "/admin/dripdrop",
        create_app(dd, authorize=lambda request: request.headers.get("x-staff") == "yes"),
    )
    with TestClient(host) as client:
        assert client.get("/").json() == {"app": "host"}
        assert client.get("/admin/dripdrop/health").json()["status"] == "ok"
        staff = {"x-staff": "yes"}
        created = client.post(
            "/admin/dripdrop/api/v1/sequences", json={"name": "M", "key": "mounted"}, headers=staff
        )
        assert created.status_code == 201, created.text
        listed = client.get("/admin/dripdrop/api/v1/sequences", headers=staff).json()
        assert [s["key"] for s in listed["items"]] == ["mounted"]
        assert client.get("/admin/dripdrop/api/v1/sequences").status_code == 401
        # API keys still work under the prefix.
        assert client.get("/admin/dripdrop/api/v1/sequences", headers=admin).status_code == 200
        # The OpenAPI document is served under the prefix too.
        assert client.get("/admin/dripdrop/api/v1/openapi.json").status_code == 200


# --- Django -------------------------------------------------------------------------------


def _django_view(request: Any) -> Any:
    from django.http import JsonResponse

    return JsonResponse({"app": "django", "path": request.path})


urlpatterns: list[Any] = []


def _django_asgi() -> Any:
    import django
    from django.conf import settings
    from django.urls import path

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="test-only",
            ROOT_URLCONF=__name__,
            ALLOWED_HOSTS=["testserver", "127.0.0.1", "localhost"],
            INSTALLED_APPS=[],
            MIDDLEWARE=[],
            DATABASES={},
            USE_TZ=True,
        )
        django.setup()
    urlpatterns[:] = [path("", _django_view), path("shop/", _django_view)]
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


def dispatch(prefix: str, dripdrop_app: Any, other: Any) -> Any:
    """The asgi.py of docs/web.md: ``prefix`` (and below) to DripDrop, the rest to ``other``."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await dripdrop_app(scope, receive, send)
            return
        path = scope["path"]
        if path == prefix or path.startswith(prefix + "/"):
            scope = {**scope, "root_path": scope.get("root_path", "") + prefix}
            await dripdrop_app(scope, receive, send)
            return
        await other(scope, receive, send)

    return app


async def test_mounted_beside_django_through_an_asgi_dispatcher(dd, admin) -> None:
    application = dispatch("/dripdrop", create_app(dd), _django_asgi())
    transport = httpx2.ASGITransport(app=application)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        home = await client.get("/shop/")
        assert home.status_code == 200 and home.json() == {"app": "django", "path": "/shop/"}
        health = await client.get("/dripdrop/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        created = await client.post(
            "/dripdrop/api/v1/sequences", json={"name": "D", "key": "django_seq"}, headers=admin
        )
        assert created.status_code == 201, created.text
        listed = await client.get("/dripdrop/api/v1/sequences", headers=admin)
        assert [s["key"] for s in listed.json()["items"]] == ["django_seq"]
        assert (await client.get("/dripdrop/api/v1/sequences")).status_code == 401
        # A path that only starts like the prefix stays Django's.
        assert (await client.get("/dripdropper")).status_code == 404


# --- Flask --------------------------------------------------------------------------------


def test_mounted_in_flask_through_a2wsgi_and_dispatcher_middleware(dd, admin) -> None:
    from a2wsgi import ASGIMiddleware
    from flask import Flask
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    flask_app = Flask(__name__)

    @flask_app.get("/")
    def home() -> dict[str, str]:
        return {"app": "flask"}

    flask_app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        flask_app.wsgi_app, {"/dripdrop": ASGIMiddleware(create_app(dd))}
    )
    client = flask_app.test_client()
    assert client.get("/").get_json() == {"app": "flask"}
    health = client.get("/dripdrop/health")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
    created = client.post(
        "/dripdrop/api/v1/sequences", json={"name": "F", "key": "flask_seq"}, headers=admin
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    listed = client.get("/dripdrop/api/v1/sequences", headers=admin)
    assert listed.status_code == 200
    assert [s["key"] for s in listed.get_json()["items"]] == ["flask_seq"]
    unauthorized = client.get("/dripdrop/api/v1/sequences")
    assert unauthorized.status_code == 401
    assert unauthorized.headers["content-type"] == "application/problem+json"
