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
    category: str | None = None


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
    transition_id: uuid.UUID | None = None  # set instead of step_id on a transition's condition


@dataclass(frozen=True, slots=True)
class Transition:
    """After ``from_step_id`` finishes, go to ``to_step_id`` (None: complete) when its
    conditions hold (``condition_mode`` always|all|any); tried in ascending ``priority``."""

    id: uuid.UUID
    sequence_version_id: uuid.UUID
    from_step_id: uuid.UUID
    to_step_id: uuid.UUID | None = None
    condition_mode: str = "always"
    priority: int = 0
    tenant_key: str | None = None
    inserted_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BranchCount:
    """How many enrollments a split step sent down one branch (``holdout``: the control
    group, which receives nothing)."""

    step_id: uuid.UUID
    branch: str
    count: int


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
    exit_reason: str | None = None  # why it ended: goal, exit_event, unenrolled, halted, …
    converted_at: datetime | None = None  # when the version's goal was reached
    conversion_step_id: uuid.UUID | None = None  # the last step sent before the goal


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
    branch: str | None = None  # the split branch chosen (split steps)
    occurrence: int | None = None  # 1, 2, … for a recurring step's own sends
    # The provider's message id, and the strongest status its events reported (delivered,
    # opened, clicked, bounced, complained…; None until an event arrives).
    provider_message_id: str | None = None
    delivery_status: str | None = None


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
class Suppression:
    """A recipient not to be sent to on ``channel`` (``recipient`` normalised). ``tenant_key``
    None: every tenant; ``category`` None: every category."""

    id: uuid.UUID
    channel: str
    recipient: str
    reason: str
    tenant_key: str | None = None
    inserted_at: datetime | None = None
    category: str | None = None
    source: str | None = None


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


@dataclass(frozen=True, slots=True)
class ExecutionRun:
    """What :meth:`DripDrop.run_execution` did with one execution.

    ``ran`` is True when it claimed and ran it; ``outcome`` is then what happened (``sent``,
    ``skipped``, ``failed``, ``retried``, ``deferred``, ``held``, ``fenced``, ``cancelled``, or
    ``lease_lost`` when another worker had taken the claim over before the outcome could be
    written). When it did not run: ``not_found``, ``not_due``, ``held`` (paused), ``claimed``
    (another worker or run holds it), ``released`` (cut short, given back) or the state the
    execution had already reached (``sent``, ``failed``, ``skipped``, ``cancelled``)."""

    execution_id: uuid.UUID
    outcome: str
    ran: bool
    state: str | None = None
    scheduled_for: datetime | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """What a provider reported about a sent message (delivered, bounced, opened…)."""

    id: uuid.UUID
    execution_id: uuid.UUID
    provider: str
    provider_event_id: str
    type: str
    channel: str
    occurred_at: datetime
    recipient: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    adapter_id: uuid.UUID | None = None
    tenant_key: str | None = None
    inserted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveryEventsResult:
    """What ``record_delivery_events`` (and a provider webhook) did with a batch of events:
    ``recorded`` new, ``duplicates`` seen before, ``unmatched`` (no execution has their message
    id: accepted, not stored), and the ``suppressed`` recipients written."""

    received: int = 0
    recorded: int = 0
    duplicates: int = 0
    unmatched: int = 0
    suppressed: int = 0


# ---- templates: checks and the AI builder (issue 18) ----------------------------------------


@dataclass(frozen=True, slots=True)
class SmsSegments:
    """How an SMS body travels: ``GSM-7`` (160 septets in one segment, 153 per segment of a
    longer message; ``{}[]~^|€\\`` count two) or ``UCS-2`` (70 / 67 UTF-16 units) as soon as
    one character is outside GSM-7 (``non_gsm`` lists them)."""

    encoding: str
    units: int
    segments: int
    per_segment: int
    non_gsm: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens an AI template run spent, over every request (the repairs included)."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class GeneratedTemplate:
    """A template written by the AI builder, validated before it was returned.

    Email: ``subject``, ``preheader``, ``body`` (HTML, or an MJML document for engine ``mjml``)
    and ``text``; SMS: ``body`` (with ``sms`` segments); chat channels: ``text``. ``repairs``
    counts the answers sent back to the model with validation problems; ``step_config`` is
    ready for ``create_step(config=...)``.
    """

    channel: str
    engine: str
    subject: str | None = None
    preheader: str | None = None
    body: str | None = None
    text: str | None = None
    variables: tuple[str, ...] = ()
    repairs: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)
    sms: SmsSegments | None = None
    model: str | None = None

    @property
    def fields(self) -> dict[str, str]:
        """The template's fields that are set (subject, preheader, body, text)."""
        names = ("subject", "preheader", "body", "text")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    @property
    def step_config(self) -> dict[str, Any]:
        """The fields a step's config takes (the preheader lives inside the body) and its
        ``template_engine``."""
        config: dict[str, Any] = {k: v for k, v in self.fields.items() if k != "preheader"}
        config["template_engine"] = self.engine
        return config


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """A problem ``check_templates`` found in a step of an active version. ``kind``: syntax,
    render, mjml, unknown_variable, recipient, sms_length, unsubscribe, not_checked or
    no_active_version; ``severity`` "error" (fails ``dripdrop templates check``) or "warning"."""

    sequence_key: str
    version: int | None
    step_key: str | None
    channel: str | None
    field: str
    kind: str
    message: str
    severity: str = "error"
    tenant_key: str | None = None

    def __str__(self) -> str:
        where = f"{self.sequence_key} v{self.version}" if self.version else self.sequence_key
        step = f" step {self.step_key!r}" if self.step_key else ""
        return f"{where}{step}: {self.field}: {self.message}"


# --- Analytics (engine/analytics.py): read from the hourly rollups, never from executions ---


@dataclass(frozen=True, slots=True)
class DeliveryPerformance:
    """Deliveries through one channel, provider or adapter over a time range. ``sends`` counts
    every attempt that got to the delivery (sent, failed, retried); ``error_rate`` is
    (failed + retried) / sends. Latencies (ms) are estimated from a fixed-bucket histogram
    of the provider's answer times of sent messages (None without any). ``delivery`` counts
    the provider's events (delivered, bounced, complained, opened, clicked …)."""

    channel: str | None = None
    provider: str | None = None
    adapter_id: uuid.UUID | None = None
    adapter_name: str | None = None
    sends: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    error_rate: float | None = None
    avg_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    delivery: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StepFunnel:
    """One step of a version's funnel. ``reached`` = sent + skipped + failed (the enrollments
    that got past it); ``entered`` is the stage before (enrolled, or the previous step's
    ``reached``); ``drop_off`` = entered - reached (stopped, waiting, or routed around it)."""

    step_id: uuid.UUID
    key: str
    name: str
    position: int
    channel: str
    entered: int = 0
    reached: int = 0
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    cancelled: int = 0
    retried: int = 0
    drop_off: int = 0
    drop_off_rate: float | None = None
    delivery: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VersionTotals:
    """Enrollments of one version over the range (the version picker of the analytics)."""

    version_id: uuid.UUID
    version: int
    active: bool
    enrolled: int = 0
    completed: int = 0
    exited: int = 0
    cancelled: int = 0


@dataclass(frozen=True, slots=True)
class SequenceAnalytics:
    """A version's funnel (enrolled → each step → completed / exited / cancelled), drop-off per
    step and delivery performance per channel and per provider, over [since, until) rounded
    out to whole hours."""

    sequence_id: uuid.UUID
    sequence_key: str
    version_id: uuid.UUID | None
    version: int | None
    since: datetime
    until: datetime
    enrolled: int = 0
    completed: int = 0
    exited: int = 0
    cancelled: int = 0
    restarted: int = 0
    converted: int = 0
    ended_by: dict[str, int] = field(default_factory=dict)
    steps: list[StepFunnel] = field(default_factory=list)
    channels: list[DeliveryPerformance] = field(default_factory=list)
    providers: list[DeliveryPerformance] = field(default_factory=list)
    versions: list[VersionTotals] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AdapterHealth:
    """One channel adapter's deliveries over [since, until) (24 h by default): sends, error
    rate and p50/p95 latency (see DeliveryPerformance)."""

    adapter_id: uuid.UUID
    name: str
    channel: str
    provider: str
    active: bool
    since: datetime
    until: datetime
    tenant_key: str | None = None
    sends: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    error_rate: float | None = None
    avg_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    delivery: dict[str, int] = field(default_factory=dict)
