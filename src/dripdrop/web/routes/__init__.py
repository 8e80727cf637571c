"""The REST API's routers, included by ``create_app`` under ``/api/v1``."""

from dripdrop.web.routes import sequences

ROUTERS = [sequences.router]
