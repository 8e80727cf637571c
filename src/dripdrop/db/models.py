"""The tables. Defined without a schema: the configured schema is applied with a translate map."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSONB, uuid.UUID: UUID(as_uuid=True)}


def _id() -> Mapped[uuid.UUID]:
    return mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )


def _ts(nullable: bool = True) -> Mapped[datetime | None]:
    return mapped_column(DateTime(timezone=True), nullable=nullable)


class _Stamped:
    tenant_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    inserted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


def _fk(target: str, ondelete: str = "CASCADE", nullable: bool = False) -> Mapped[Any]:
    return mapped_column(
        UUID(as_uuid=True), ForeignKey(target, ondelete=ondelete), nullable=nullable
    )


def _json(default: str = "'{}'::jsonb") -> Mapped[Any]:
    return mapped_column(JSONB, nullable=False, server_default=text(default))


class Sequence(_Stamped, Base):
    __tablename__ = "sequences"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(Text, nullable=False)
    key: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    hook_module: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    metadata_: Mapped[Any] = mapped_column(
        "metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    # Scope of unsubscribes (0008): marketing, product, transactional…; NULL = uncategorised.
    category: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        # COALESCE so that NULL (global) tenants collide too, on PostgreSQL 14 as well.
        Index("uq_sequences_tenant_key", text("COALESCE(tenant_key, '')"), "key", unique=True),
    )


class SequenceVersion(_Stamped, Base):
    __tablename__ = "sequence_versions"
    id: Mapped[uuid.UUID] = _id()
    sequence_id: Mapped[uuid.UUID] = _fk("sequences.id")
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    config: Mapped[Any] = _json()
    __table_args__ = (
        UniqueConstraint("sequence_id", "version"),
        Index(
            "uq_sequence_versions_one_active",
            "sequence_id",
            unique=True,
            postgresql_where=text("active"),
        ),
    )


class ChannelAdapter(_Stamped, Base):
    __tablename__ = "channel_adapters"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(Text, nullable=False)
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    provider: Mapped[str] = mapped_column(String(64), nullable=False)
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary)
    config: Mapped[Any] = _json()
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    __table_args__ = (
        Index(
            "uq_channel_adapters_default",
            text("COALESCE(tenant_key, '')"),
            "channel",
            unique=True,
            postgresql_where=text("is_default"),
        ),
        Index("uq_channel_adapters_name", text("COALESCE(tenant_key, '')"), "name", unique=True),
    )


class Step(_Stamped, Base):
    __tablename__ = "steps"
    id: Mapped[uuid.UUID] = _id()
    sequence_version_id: Mapped[uuid.UUID] = _fk("sequence_versions.id")
    name: Mapped[str] = mapped_column(Text, nullable=False)
    key: Mapped[str] = mapped_column(Text, nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    timing: Mapped[Any] = _json()
    template_type: Mapped[str] = mapped_column(String(16), nullable=False, server_default="inline")
    template_content: Mapped[Any | None] = mapped_column(JSONB)
    template_module: Mapped[str | None] = mapped_column(Text)
    template_function: Mapped[str | None] = mapped_column(Text)
    channel_adapter_id: Mapped[uuid.UUID | None] = _fk("channel_adapters.id", "SET NULL", True)
    config: Mapped[Any] = _json()
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    __table_args__ = (
        UniqueConstraint("sequence_version_id", "key"),
        Index("ix_steps_version_position", "sequence_version_id", "position"),
    )


class HttpHook(_Stamped, Base):
    __tablename__ = "http_hooks"
    id: Mapped[uuid.UUID] = _id()
    sequence_id: Mapped[uuid.UUID] = _fk("sequences.id")
    name: Mapped[str] = mapped_column(Text, nullable=False)
    key: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(10), nullable=False, server_default="POST")
    url: Mapped[str] = mapped_column(Text, nullable=False)
    timeout_ms: Mapped[int] = mapped_column(Integer, nullable=False, server_default="5000")
    retry_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="2")
    auth_type: Mapped[str] = mapped_column(String(16), nullable=False, server_default="none")
    auth_config: Mapped[bytes | None] = mapped_column(LargeBinary)
    headers: Mapped[Any] = _json()
    body_template: Mapped[str | None] = mapped_column(Text)
    response_path: Mapped[str | None] = mapped_column(Text)
    response_type: Mapped[str] = mapped_column(String(16), nullable=False, server_default="json")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    last_test_at: Mapped[datetime | None] = _ts()
    last_test_result: Mapped[Any | None] = mapped_column(JSONB)
    __table_args__ = (UniqueConstraint("sequence_id", "key"),)


class Condition(_Stamped, Base):
    __tablename__ = "conditions"
    id: Mapped[uuid.UUID] = _id()
    step_id: Mapped[uuid.UUID | None] = _fk("steps.id", nullable=True)
    # A condition guards a step or a transition, never both (0010).
    transition_id: Mapped[uuid.UUID | None] = _fk("transitions.id", nullable=True)
    condition_type: Mapped[str] = mapped_column(String(32), nullable=False)
    operator: Mapped[str] = mapped_column(String(16), nullable=False, server_default="eq")
    hook_function: Mapped[str | None] = mapped_column(Text)
    http_hook_id: Mapped[uuid.UUID | None] = _fk("http_hooks.id", "CASCADE", True)
    field_path: Mapped[str | None] = mapped_column(Text)
    expected_value: Mapped[str | None] = mapped_column(Text)
    config: Mapped[Any] = _json()
    __table_args__ = (
        Index("ix_conditions_step_id", "step_id"),
        Index("ix_conditions_transition_id", "transition_id"),
        CheckConstraint("(step_id IS NULL) <> (transition_id IS NULL)", name="one_owner"),
    )


class Transition(_Stamped, Base):
    """An edge of a version's graph: after ``from_step`` finishes, go to ``to_step`` (None:
    complete) when its conditions hold; tried in ascending ``priority`` (0010)."""

    __tablename__ = "transitions"
    id: Mapped[uuid.UUID] = _id()
    sequence_version_id: Mapped[uuid.UUID] = _fk("sequence_versions.id")
    from_step_id: Mapped[uuid.UUID] = _fk("steps.id")
    to_step_id: Mapped[uuid.UUID | None] = _fk("steps.id", nullable=True)
    condition_mode: Mapped[str] = mapped_column(String(8), nullable=False, server_default="always")
    priority: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    __table_args__ = (
        Index("ix_transitions_from_step_id_priority", "from_step_id", "priority"),
        Index("ix_transitions_to_step_id", "to_step_id"),
        Index("ix_transitions_sequence_version_id", "sequence_version_id"),
    )


class Enrollment(_Stamped, Base):
    __tablename__ = "enrollments"
    id: Mapped[uuid.UUID] = _id()
    sequence_id: Mapped[uuid.UUID] = _fk("sequences.id")
    sequence_version_id: Mapped[uuid.UUID] = _fk("sequence_versions.id")
    subscriber_type: Mapped[str] = mapped_column(Text, nullable=False)
    subscriber_id: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, server_default="active")
    current_step_id: Mapped[uuid.UUID | None] = _fk("steps.id", "SET NULL", True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    completed_at: Mapped[datetime | None] = _ts()
    cancelled_at: Mapped[datetime | None] = _ts()
    data: Mapped[Any] = _json()
    metadata_: Mapped[Any] = mapped_column(
        "metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    # Why it ended (goal, exit_event, unenrolled, halted, completed, holdout…) and a goal's
    # conversion, attributed to the last step sent before it (0010).
    exit_reason: Mapped[str | None] = mapped_column(String(32))
    converted_at: Mapped[datetime | None] = _ts()
    conversion_step_id: Mapped[uuid.UUID | None] = _fk("steps.id", "SET NULL", True)
    # W3C traceparent of the enroll that started it, while tracing is on (0013).
    trace_parent: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        UniqueConstraint("sequence_id", "subscriber_type", "subscriber_id"),
        Index("ix_enrollments_conversion_step_id", "conversion_step_id"),
        Index("ix_enrollments_sequence_state", "sequence_id", "state"),
        Index("ix_enrollments_subscriber", "subscriber_type", "subscriber_id"),
        # Room on each page for a new version of every row, so moving to the next step is an
        # in-place (HOT) update even when a whole page of enrollments moves at once (0003).
        {"postgresql_with": {"fillfactor": 50}},
    )


class StepExecution(_Stamped, Base):
    __tablename__ = "step_executions"
    id: Mapped[uuid.UUID] = _id()
    enrollment_id: Mapped[uuid.UUID] = _fk("enrollments.id")
    step_id: Mapped[uuid.UUID] = _fk("steps.id")
    state: Mapped[str] = mapped_column(String(16), nullable=False, server_default="scheduled")
    scheduled_for: Mapped[datetime | None] = _ts()
    executed_at: Mapped[datetime | None] = _ts()
    failed_at: Mapped[datetime | None] = _ts()
    retry_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    recipient: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[Any | None] = mapped_column(JSONB)
    response: Mapped[Any | None] = mapped_column(JSONB)
    error_message: Mapped[str | None] = mapped_column(Text)
    # Engine bookkeeping (not part of the public record).
    idempotency_key: Mapped[str] = mapped_column(Text, nullable=False)
    held: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    waiting_for: Mapped[str | None] = mapped_column(Text)
    adapter_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    replay_of: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    lease_token: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    locked_until: Mapped[datetime | None] = _ts()
    locked_by: Mapped[str | None] = mapped_column(Text)
    # The split branch this execution chose; which occurrence of a recurring step it is (0010).
    branch: Mapped[str | None] = mapped_column(Text)
    occurrence: Mapped[int | None] = mapped_column(Integer)
    # The provider's id of the sent message, and the strongest status its events reported (0009).
    provider_message_id: Mapped[str | None] = mapped_column(Text)
    delivery_status: Mapped[str | None] = mapped_column(Text)
    # How long the provider took to answer the delivery, in ms (0011: adapter latency analytics).
    delivery_ms: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (
        # The claim query walks this index only: due work, never the finished history.
        Index(
            "ix_step_executions_due",
            "scheduled_for",
            postgresql_where=text("state = 'scheduled' AND NOT held"),
        ),
        Index("ix_step_executions_enrollment", "enrollment_id", "scheduled_for"),
        Index("ix_step_executions_step", "step_id"),
        Index(
            "ix_step_executions_branch",
            "step_id",
            "branch",
            postgresql_where=text("branch IS NOT NULL"),
        ),
        # Provider webhooks find their executions by message id (0009).
        Index(
            "ix_step_executions_provider_message_id",
            "provider_message_id",
            postgresql_where=text("provider_message_id IS NOT NULL"),
        ),
        # The dashboard overview's sends and failures of the last hour (0015).
        Index(
            "ix_step_executions_finished",
            "executed_at",
            postgresql_where=text("state IN ('sent', 'failed')"),
        ),
        # Room on each page so lease stamps are in-place (HOT) updates.
        {"postgresql_with": {"fillfactor": 80}},
    )


class Event(_Stamped, Base):
    __tablename__ = "events"
    id: Mapped[uuid.UUID] = _id()
    enrollment_id: Mapped[uuid.UUID] = _fk("enrollments.id")
    event_type: Mapped[str] = mapped_column(String(32), nullable=False, server_default="custom")
    event_key: Mapped[str] = mapped_column(Text, nullable=False)
    event_data: Mapped[Any] = _json()
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    __table_args__ = (Index("ix_events_enrollment_key", "enrollment_id", "event_key"),)


class Notification(_Stamped, Base):
    __tablename__ = "notifications"
    id: Mapped[uuid.UUID] = _id()
    topic: Mapped[str] = mapped_column(Text, nullable=False)
    event: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[Any] = _json()
    enrollment_id: Mapped[uuid.UUID | None] = _fk("enrollments.id", "SET NULL", True)
    execution_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    read_at: Mapped[datetime | None] = _ts()
    __table_args__ = (
        Index("ix_notifications_topic", "topic", "inserted_at"),
        # One per execution: a redelivery of the same execution adds no second notification.
        Index(
            "uq_notifications_execution",
            "execution_id",
            unique=True,
            postgresql_where=text("execution_id IS NOT NULL"),
        ),
    )


class ApiKey(_Stamped, Base):
    __tablename__ = "api_keys"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(Text, nullable=False)
    prefix: Mapped[str] = mapped_column(Text, nullable=False)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    last_used_at: Mapped[datetime | None] = _ts()
    revoked_at: Mapped[datetime | None] = _ts()
    __table_args__ = (UniqueConstraint("prefix", name="uq_api_keys_prefix"),)


class IdempotencyKey(Base):
    """The first answer to a REST request sent with an ``Idempotency-Key`` header (0007)."""

    __tablename__ = "idempotency_keys"
    scope: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    request_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    response: Mapped[Any] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)


class SendPacing(Base):
    """The next free send slot of a short rate limit, shared by every worker (0012)."""

    __tablename__ = "send_pacing"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    next_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class SendCount(Base):
    """Sends counted per fixed window of a long rate limit (0012)."""

    __tablename__ = "send_counts"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    __table_args__ = (Index("ix_send_counts_window_start", "window_start"),)


class SendHistory(Base):
    """A subscriber's recent sends under one frequency cap, with the execution of each (0014)."""

    __tablename__ = "send_history"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    sent_at: Mapped[list[datetime]] = mapped_column(ARRAY(DateTime(timezone=True)), nullable=False)
    execution_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), nullable=False
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    __table_args__ = (Index("ix_send_history_expires_at", "expires_at"),)


class Suppression(Base):
    """Who must not be sent to (0008): per channel and normalised recipient; NULL tenant = every
    tenant, NULL category = every category."""

    __tablename__ = "suppressions"
    id: Mapped[uuid.UUID] = _id()
    channel: Mapped[str] = mapped_column(Text, nullable=False)
    recipient: Mapped[str] = mapped_column(Text, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    category: Mapped[str | None] = mapped_column(Text)
    tenant_key: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[Any] = mapped_column(
        "metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    inserted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    __table_args__ = (
        CheckConstraint(
            "reason IN ('unsubscribe', 'bounce', 'complaint', 'manual')", name="reason"
        ),
        # COALESCE: NULL tenants and categories collide too, on PostgreSQL 14 as well.
        Index(
            "uq_suppressions_target",
            "channel",
            "recipient",
            text("COALESCE(tenant_key, '')"),
            text("COALESCE(category, '')"),
            unique=True,
        ),
        Index(
            "ix_suppressions_tenant_inserted",
            text("COALESCE(tenant_key, '')"),
            "inserted_at",
            "id",
        ),
    )


class DeliveryEvent(Base):
    """What a provider reported about a sent message (0009): one row per provider event."""

    __tablename__ = "delivery_events"
    id: Mapped[uuid.UUID] = _id()
    execution_id: Mapped[uuid.UUID] = _fk("step_executions.id")
    adapter_id: Mapped[uuid.UUID | None] = _fk("channel_adapters.id", "SET NULL", True)
    provider: Mapped[str] = mapped_column(Text, nullable=False)
    provider_event_id: Mapped[str] = mapped_column(Text, nullable=False)
    type: Mapped[str] = mapped_column(Text, nullable=False)
    channel: Mapped[str] = mapped_column(Text, nullable=False)
    recipient: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    data: Mapped[Any] = _json()
    tenant_key: Mapped[str | None] = mapped_column(Text)
    inserted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    __table_args__ = (
        UniqueConstraint("provider", "provider_event_id"),
        CheckConstraint(
            "type IN ('sent', 'delivered', 'deferred', 'soft_bounced', 'bounced', 'complained', "
            "'opened', 'clicked', 'unsubscribed', 'failed')",
            name="type",
        ),
        Index("ix_delivery_events_execution", "execution_id", "occurred_at"),
        Index(
            "ix_delivery_events_soft_bounces",
            "recipient",
            "occurred_at",
            postgresql_where=text("type = 'soft_bounced'"),
        ),
    )


# Analytics rollups (0011): hourly and daily counts written by triggers, never by scanning
# executions. ``analytics_pending`` is append-only (what the triggers write); a fold moves it
# into ``analytics_hourly`` and ``analytics_daily``. Plain tables: a rollup row's identity is
# an expression index.
_NIL_UUID = "'00000000-0000-0000-0000-000000000000'::uuid"
#: The delivery latency histogram's bucket bounds (ms, exclusive); the last bucket is open.
ANALYTICS_LATENCY_BOUNDS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
#: Its columns: ms_lt_1 (under 1 ms), ms_lt_2 … ms_lt_30000, ms_ge_30000.
ANALYTICS_HISTOGRAM = [f"ms_lt_{b}" for b in ANALYTICS_LATENCY_BOUNDS_MS] + [
    f"ms_ge_{ANALYTICS_LATENCY_BOUNDS_MS[-1]}"
]


def _rollup_columns() -> list[Column[Any]]:
    return [
        Column("bucket", DateTime(timezone=True), nullable=False),
        Column("sequence_id", UUID(as_uuid=True), nullable=False),
        Column("sequence_version_id", UUID(as_uuid=True), nullable=False),
        Column("step_id", UUID(as_uuid=True)),
        Column("adapter_id", UUID(as_uuid=True)),
        Column("channel", Text),
        Column("metric", Text, nullable=False),
        Column("tenant_key", Text),
        Column("count", BigInteger, nullable=False),
        Column("latency_count", BigInteger, nullable=False),
        Column("latency_sum_ms", BigInteger, nullable=False),
        *[Column(name, BigInteger, nullable=False) for name in ANALYTICS_HISTOGRAM],
    ]


def _rollup(name: str) -> Table:
    return Table(
        name,
        Base.metadata,
        *_rollup_columns(),
        Index(
            f"uq_{name}_key",
            "sequence_version_id",
            "bucket",
            text(f"COALESCE(step_id, {_NIL_UUID})"),
            text(f"COALESCE(adapter_id, {_NIL_UUID})"),
            text("COALESCE(channel, '')"),
            "metric",
            unique=True,
        ),
        Index(
            f"ix_{name}_adapter",
            "adapter_id",
            "bucket",
            postgresql_where=text("adapter_id IS NOT NULL"),
        ),
    )


AnalyticsHourly = _rollup("analytics_hourly")
AnalyticsDaily = _rollup("analytics_daily")

AnalyticsPending = Table(
    "analytics_pending",
    Base.metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    *_rollup_columns(),
)


class ArchivedRow(Base):
    """A row removed by ``prune(archive=True)``, as JSON (0013)."""

    __tablename__ = "archived_rows"
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    table_name: Mapped[str] = mapped_column(Text, nullable=False)
    row_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    row: Mapped[Any] = mapped_column(JSONB, nullable=False)
    archived_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    __table_args__ = (Index("ix_archived_rows_table_archived_at", "table_name", "archived_at"),)


TABLES = Base.metadata.tables
