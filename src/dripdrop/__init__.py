"""DripDrop: a PostgreSQL-backed, multi-channel messaging sequence engine."""

from dripdrop.client import AsyncDripDrop, DripDrop
from dripdrop.errors import (
    AlreadyEnrolled,
    ConfigurationError,
    ConflictError,
    DripDropError,
    NotFound,
    PermanentError,
    TransientError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "AlreadyEnrolled",
    "AsyncDripDrop",
    "ConfigurationError",
    "ConflictError",
    "DripDrop",
    "DripDropError",
    "NotFound",
    "PermanentError",
    "TransientError",
    "ValidationError",
    "__version__",
]
