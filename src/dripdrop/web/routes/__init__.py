"""The REST API's routers, included by ``create_app`` under ``/api/v1``."""

from dripdrop.web.routes import definitions, enrollments, executions, sequences

ROUTERS = [sequences.router, definitions.router, enrollments.router, executions.router]
