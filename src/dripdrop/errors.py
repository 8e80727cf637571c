"""The exception tree. Every error DripDrop raises derives from :class:`DripDropError`.

DripDropError
├── ValidationError      bad definitions or input; ``.errors`` maps field → messages
├── NotFound             unknown key or id
├── AlreadyEnrolled      duplicate enrollment (see ``on_conflict``)
├── ConflictError        a deadlock or serialization failure with a concurrent transaction
├── ConfigurationError   missing encryption key, missing optional extra, bad settings
├── CryptoError          a ciphertext that cannot be decrypted with the key ring
├── OutboundBlocked      the outbound guard refused a destination
└── DeliveryError        raised by providers and hooks while delivering
    ├── TransientError   worth retrying (network, timeout, 5xx, 429); may carry retry_after
    └── PermanentError   retrying will not help (4xx, rejected recipient, bad template)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class DripDropError(Exception):
    """Base class of every error DripDrop raises."""


class ValidationError(DripDropError, ValueError):
    """Bad input. ``errors`` maps each bad field to a list of messages."""

    def __init__(self, errors: Mapping[str, Iterable[str] | str], message: str | None = None):
        self.errors: dict[str, list[str]] = {
            field: [msgs] if isinstance(msgs, str) else list(msgs) for field, msgs in errors.items()
        }
        if message is None:
            parts = [f"{field}: {'; '.join(msgs)}" for field, msgs in self.errors.items()]
            message = "invalid input — " + " | ".join(parts) if parts else "invalid input"
        super().__init__(message)

    @classmethod
    def single(cls, field: str, message: str) -> ValidationError:
        return cls({field: [message]})


class NotFound(DripDropError, LookupError):
    """An unknown key or id."""


class AlreadyEnrolled(DripDropError):
    """The subscriber already has an enrollment in this sequence."""

    def __init__(self, message: str, enrollment: Any = None):
        super().__init__(message)
        self.enrollment = enrollment


class ConflictError(DripDropError):
    """The operation conflicted with a concurrent transaction (PostgreSQL deadlock_detected or
    serialization_failure) and was rolled back; it can be retried. The database error is
    ``__cause__``. In its own transaction DripDrop has already retried; in a host's transaction
    (``connection=``) the host's transaction is aborted and is the one to retry."""


class ConfigurationError(DripDropError):
    """DripDrop is not configured for what was asked (a key, an extra, a setting)."""


class CryptoError(DripDropError):
    """A ciphertext could not be decrypted (unknown key, tampering, moved to another row)."""


class OutboundBlocked(DripDropError):
    """The outbound guard refused to connect to a destination."""


class DeliveryError(DripDropError):
    """A delivery or hook call failed; ``response`` holds the provider answer when there is one."""

    def __init__(self, message: str, *, response: Any = None, status: int | None = None):
        super().__init__(message)
        self.response = response
        self.status = status


class TransientError(DeliveryError):
    """Worth retrying later. ``retry_after`` (seconds) when the provider said when."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        response: Any = None,
        status: int | None = None,
    ):
        super().__init__(message, response=response, status=status)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """Retrying will not help."""


def require_extra(module: str, extra: str) -> Any:
    """Import an optional dependency or raise a ConfigurationError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(
            f"{module!r} is not installed: pip install 'dripdrop-engine[{extra}]'"
        ) from exc
