"""Detached, frozen records returned to users. Secrets stay wrapped so reprs never show them."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from dripdrop.crypto import Secret

R = TypeVar("R")

_RENAMES = {"metadata": "metadata_"}


def from_row(cls: type[R], row: Any, **overrides: Any) -> R:
    """Build a record from a SQLAlchemy row (or mapping), taking only the record's fields."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in overrides:
            values[f.name] = overrides[f.name]
        elif f.name in mapping:
            values[f.name] = mapping[f.name]
        elif _RENAMES.get(f.name) in mapping:
            values[f.name] = mapping[_RENAMES[f.name]]
    return cls(**values)


@dataclass(frozen=True, slots=True)
class Sequence:
    id: uuid.UUID
    name: str
    key: str
    description: str | None = None
    hook_module: str | None = None
    active: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)
    tenant_key: str | None = None
    inserted_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SequenceVersion:
    id: uuid.UUID
    sequence_id: uuid.UUID
    version: int
    name: str | None = None
    active: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    tenant_key: str | None = None
    inserted_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Step:
    id: uuid.UUID
    sequence_version_id: uuid.UUID
    name: str
    key: str
    position: int
    channel: str
    timing: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    template_type: str = "inline"
    template_content: Any = None
    template_module: str | None = None
    template_function: str | None = None
    channel_adapter_id: uuid.UUID | None = None
    active: bool = True
    tenant_key: str | None = None
    inserted_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    id: uuid.UUID
    step_id: uuid.UUID
    condition_type: str
    operator: str
    field_path: str | None = None
    expected_value: str | None = None
    hook_function: str | None = None
    http_hook_id: uuid.UUID | None = None
    config: dict[str, Any] = field(default_factory=dict)
    tenant_key: str | None = None
    inserted_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChannelAdapter:
    """A stored adapter. ``credentials`` is a :class:`~dripdrop.crypto.Secret`: ``.reveal()``."""

    id: uuid.UUID
    name: str
    channel: str
    provider: str
    credentials: Secret = field(default_factory=lambda: Secret({}))
    config: dict[str, Any] = field(default_factory=dict)
    is_default: bool = False
    active: bool = True
    tenant_key: str | None = None
    inserted_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class HttpHook:
    """A stored HTTP hook. ``auth_config`` is a :class:`~dripdrop.crypto.Secret`."""

    id: uuid.UUID
    sequence_id: uuid.UUID
    name: str
    key: str
    url: str
    method: str = "POST"
    auth_type: str = "none"
    auth_config: Secret = field(default_factory=lambda: Secret({}))
    headers: dict[str, Any] = field(default_factory=dict)
    body_template: str | None = None
    response_path: str | None = None
    response_type: str = "json"
    timeout_ms: int = 5000
    retry_count: int = 2
    description: str | None = None
    active: bool = True
    last_test_at: datetime | None = None
    last_test_result: dict[str, Any] | None = None
    tenant_key: str | None = None
    inserted_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class HookTestResult:
    """The outcome of ``test_http_hook``. ``missing`` names the variables the hook's templates
    read that ``test_data`` lacked (they rendered empty)."""

    ok: bool
    value: Any = None
    status: int | None = None
    error: str | None = None
    latency_ms: float | None = None
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Enrollment:
    id: uuid.UUID
    sequence_id: uuid.UUID
    sequence_version_id: uuid.UUID
    subscriber_type: str
    subscriber_id: str
    state: str
    current_step_id: uuid.UUID | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    tenant_key: str | None = None
    inserted_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StepExecution:
    id: uuid.UUID
    enrollment_id: uuid.UUID
    step_id: uuid.UUID
    state: str
    scheduled_for: datetime | None = None
    executed_at: datetime | None = None
    failed_at: datetime | None = None
    retry_count: int = 0
    channel: str = ""
    recipient: str | None = None
    payload: Any = None
    response: Any = None
    error_message: str | None = None
    idempotency_key: str | None = None
    replay_of: uuid.UUID | None = None
    tenant_key: str | None = None
    inserted_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Event:
    id: uuid.UUID
    enrollment_id: uuid.UUID
    event_key: str
    event_data: dict[str, Any] = field(default_factory=dict)
    event_type: str = "custom"
    occurred_at: datetime | None = None
    tenant_key: str | None = None
    inserted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    id: uuid.UUID
    topic: str
    event: str | None = None
    payload: Any = None
    enrollment_id: uuid.UUID | None = None
    execution_id: uuid.UUID | None = None
    read_at: datetime | None = None
    tenant_key: str | None = None
    inserted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A REST API key. ``secret`` (the Bearer token) is set only on the record
    ``create_api_key`` returns: it is stored as a hash and cannot be shown again."""

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str] = field(default_factory=list)
    tenant_key: str | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    inserted_at: datetime | None = None
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class VersionProblem:
    """Something that would make a step of a version fail every send (``check_version``)."""

    step_id: uuid.UUID
    step_key: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"step {self.step_key!r}: {self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What :meth:`DripDrop.run_due` did."""

    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.skipped + self.failed + self.retried + self.deferred
