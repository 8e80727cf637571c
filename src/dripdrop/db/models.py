"""The tables. Defined without a schema: the configured schema is applied with a translate map."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
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
    step_id: Mapped[uuid.UUID] = _fk("steps.id")
    condition_type: Mapped[str] = mapped_column(String(32), nullable=False)
    operator: Mapped[str] = mapped_column(String(16), nullable=False, server_default="eq")
    hook_function: Mapped[str | None] = mapped_column(Text)
    http_hook_id: Mapped[uuid.UUID | None] = _fk("http_hooks.id", "CASCADE", True)
    field_path: Mapped[str | None] = mapped_column(Text)
    expected_value: Mapped[str | None] = mapped_column(Text)
    config: Mapped[Any] = _json()
    __table_args__ = (Index("ix_conditions_step_id", "step_id"),)


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
    __table_args__ = (
        UniqueConstraint("sequence_id", "subscriber_type", "subscriber_id"),
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
    __table_args__ = (
        # The claim query walks this index only: due work, never the finished history.
        Index(
            "ix_step_executions_due",
            "scheduled_for",
            postgresql_where=text("state = 'scheduled' AND NOT held"),
        ),
        Index("ix_step_executions_enrollment", "enrollment_id", "scheduled_for"),
        Index("ix_step_executions_step", "step_id"),
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


TABLES = Base.metadata.tables
