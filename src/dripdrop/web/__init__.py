"""DripDrop's web app: the REST API (``/api/v1``) and, later, the dashboard (``pip install
"dripdrop-engine[web]"``). ``create_app(dd)`` is an ASGI app to serve with ``dripdrop web`` or to
mount in a host app."""

from dripdrop.web.app import create_app

__all__ = ["create_app"]
