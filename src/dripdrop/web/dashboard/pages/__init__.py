"""The dashboard's page routers, one module per section."""

from dripdrop.web.dashboard.pages import (
    adapters,
    analytics,
    builder,
    enrollments,
    executions,
    extras,
    hooks,
    login,
    overview,
    preview,
    sequences,
)

ROUTERS = [
    login.public,
    overview.pages,
    sequences.pages,
    builder.pages,
    preview.pages,
    enrollments.pages,
    executions.pages,
    adapters.pages,
    hooks.pages,
    analytics.pages,
    extras.pages,
]
