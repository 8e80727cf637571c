"""Initial schema: definitions, enrollments, executions, events, notifications.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Tables are created unqualified; DripDrop runs migrations with a schema translate map, so they land
in the configured schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_adapters",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("credentials", sa.LargeBinary(), nullable=True),
        sa.Column(
            "config",
            postgresql.JSONB(astext_type=Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("is_default", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("tenant_key", sa.Text(), nullable=True),
        sa.Column(
            "inserted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_adapters")),
    )
    op.create_index(
        "uq_channel_adapters_default",
        "channel_adapters",
        [sa.literal_column("COALESCE(tenant_key, '')"), "channel"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.create_index(
        "uq_channel_adapters_name",
        "channel_adapters",
        [sa.literal_column("COALESCE(tenant_key, '')"), "name"],
        unique=True,
    )
    op.create_table(
        "sequences",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("hook_module", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("tenant_key", sa.Text(), nullable=True),
        sa.Column(
            "inserted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequences")),
    )
    op.create_index(
        "uq_sequences_tenant_key",
        "sequences",
        [sa.literal_column("COALESCE(tenant_key, '')"), "key"],
        unique=True,
    )
    op.create_table(
        "http_hooks",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("sequence_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("method", sa.String(length=10), server_default="POST", nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("timeout_ms", sa.Integer(), server_default="5000", nullable=False),
        sa.Column("retry_count", sa.Integer(), server_default="2", nullable=False),
        sa.Column("auth_type", sa.String(length=16), server_default="none", nullable=False),
        sa.Column("auth_config", sa.LargeBinary(), nullable=True),
        sa.Column(
            "headers",
            postgresql.JSONB(astext_type=Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("body_template", sa.Text(), nullable=True),
        sa.Column("response_path", sa.Text(), nullable=True),
        sa.Column("response_type", sa.String(length=16), server_default="json", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("last_test_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_test_result", postgresql.JSONB(astext_type=Text()), nullable=True),
        sa.Column("tenant_key", sa.Text(), nullable=True),
        sa.Column(
            "inserted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["sequence_id"],
            ["sequences.id"],
            name=op.f("fk_http_hooks_sequence_id_sequences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_http_hooks")),
        sa.UniqueConstraint("sequence_id", "key", name=op.f("uq_http_hooks_sequence_id_key")),
    )
    op.create_table(
        "sequence_versions",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("sequence_id", sa.UUID(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "config",
            postgresql.JSONB(astext_type=Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("tenant_key", sa.Text(), nullable=True),
        sa.Column(
            "inserted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["sequence_id"],
            ["sequences.id"],
            name=op.f("fk_sequence_versions_sequence_id_sequences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequence_versions")),
        sa.UniqueConstraint(
            "sequence_id", "version", name=op.f("uq_sequence_versions_sequence_id_version")
        ),
    )
    op.create_index(
        "uq_sequence_versions_one_active",
        "sequence_versions",
        ["sequence_id"],
        unique=True,
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "steps",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("sequence_version_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column(
            "timing",
            postgresql.JSONB(astext_type=Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("template_type", sa.String(length=16), server_default="inline", nullable=False),
        sa.Column("template_content", postgresql.JSONB(astext_type=Text()), nullable=True),
        sa.Column("template_module", sa.Text(), nullable=True),
        sa.Column("template_function", sa.Text(), nullable=True),
        sa.Column("channel_adapter_id", sa.UUID(), nullable=True),
        sa.Column(
            "config",
            postgresql.JSONB(astext_type=Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("tenant_key", sa.Text(), nullable=True),
        sa.Column(
            "inserted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["channel_adapter_id"],
            ["channel_adapters.id"],
            name=op.f("fk_steps_channel_adapter_id_channel_adapters"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["sequence_version_id"],
            ["sequence_versions.id"],
            name=op.f("fk_steps_sequence_version_id_sequence_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_steps")),
        sa.UniqueConstraint(
            "sequence_version_id", "key", name=op.f("uq_steps_sequence_version_id_key")
        ),
    )
    op.create_index(
        "ix_steps_version_position", "steps", ["sequence_version_id", "position"], unique=False
    )
    op.create_table(
        "conditions",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("step_id", sa.UUID(), nullable=False),
        sa.Column("condition_type", sa.String(length=32), nullable=False),
        sa.Column("operator", sa.String(length=16), server_default="eq", nullable=False),
        sa.Column("hook_function", sa.Text(), nullable=True),
        sa.Column("http_hook_id", sa.UUID(), nullable=True),
        sa.Column("field_path", sa.Text(), nullable=True),
        sa.Column("expected_value", sa.Text(), nullable=True),
        sa.Column(
            "config",
            postgresql.JSONB(astext_type=Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("tenant_key", sa.Text(), nullable=True),
        sa.Column(
            "inserted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["http_hook_id"],
            ["http_hooks.id"],
            name=op.f("fk_conditions_http_hook_id_http_hooks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["step_id"], ["steps.id"], name=op.f("fk_conditions_step_id_steps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conditions")),
    )
    op.create_index("ix_conditions_step_id", "conditions", ["step_id"], unique=False)
    op.create_table(
        "enrollments",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("sequence_id", sa.UUID(), nullable=False),
        sa.Column("sequence_version_id", sa.UUID(), nullable=False),
        sa.Column("subscriber_type", sa.Text(), nullable=False),
        sa.Column("subscriber_id", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("current_step_id", sa.UUID(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("tenant_key", sa.Text(), nullable=True),
        sa.Column(
            "inserted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["current_step_id"],
            ["steps.id"],
            name=op.f("fk_enrollments_current_step_id_steps"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["sequence_id"],
            ["sequences.id"],
            name=op.f("fk_enrollments_sequence_id_sequences"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sequence_version_id"],
            ["sequence_versions.id"],
            name=op.f("fk_enrollments_sequence_version_id_sequence_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollments")),
        sa.UniqueConstraint(
            "sequence_id",
            "subscriber_type",
            "subscriber_id",
            name=op.f("uq_enrollments_sequence_id_subscriber_type_subscriber_id"),
        ),
        postgresql_with={"fillfactor": 80},
    )
    op.create_index(
        "ix_enrollments_sequence_state", "enrollments", ["sequence_id", "state"], unique=False
    )
    op.create_index(
        "ix_enrollments_subscriber",
        "enrollments",
        ["subscriber_type", "subscriber_id"],
        unique=False,
    )
    op.create_table(
        "events",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("enrollment_id", sa.UUID(), nullable=False),
        sa.Column("event_type", sa.String(length=32), server_default="custom", nullable=False),
        sa.Column("event_key", sa.Text(), nullable=False),
        sa.Column(
            "event_data",
            postgresql.JSONB(astext_type=Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_key", sa.Text(), nullable=True),
        sa.Column(
            "inserted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_events_enrollment_id_enrollments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(
        "ix_events_enrollment_key", "events", ["enrollment_id", "event_key"], unique=False
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("event", sa.Text(), nullable=True),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("enrollment_id", sa.UUID(), nullable=True),
        sa.Column("execution_id", sa.UUID(), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_key", sa.Text(), nullable=True),
        sa.Column(
            "inserted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_notifications_enrollment_id_enrollments"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(
        "ix_notifications_topic", "notifications", ["topic", "inserted_at"], unique=False
    )
    op.create_table(
        "step_executions",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("enrollment_id", sa.UUID(), nullable=False),
        sa.Column("step_id", sa.UUID(), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="scheduled", nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retry_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=Text()), nullable=True),
        sa.Column("response", postgresql.JSONB(astext_type=Text()), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("held", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("waiting_for", sa.Text(), nullable=True),
        sa.Column("adapter_id", sa.UUID(), nullable=True),
        sa.Column("replay_of", sa.UUID(), nullable=True),
        sa.Column("lease_token", sa.UUID(), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_by", sa.Text(), nullable=True),
        sa.Column("tenant_key", sa.Text(), nullable=True),
        sa.Column(
            "inserted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_step_executions_enrollment_id_enrollments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["step_id"],
            ["steps.id"],
            name=op.f("fk_step_executions_step_id_steps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_step_executions")),
        postgresql_with={"fillfactor": 80},
    )
    op.create_index(
        "ix_step_executions_due",
        "step_executions",
        ["scheduled_for"],
        unique=False,
        postgresql_where=sa.text("state = 'scheduled' AND NOT held"),
    )
    op.create_index(
        "ix_step_executions_enrollment",
        "step_executions",
        ["enrollment_id", "scheduled_for"],
        unique=False,
    )
    op.create_index("ix_step_executions_step", "step_executions", ["step_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_step_executions_step", table_name="step_executions")
    op.drop_index("ix_step_executions_enrollment", table_name="step_executions")
    op.drop_index(
        "ix_step_executions_due",
        table_name="step_executions",
        postgresql_where=sa.text("state = 'scheduled' AND NOT held"),
    )
    op.drop_table("step_executions")
    op.drop_index("ix_notifications_topic", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_events_enrollment_key", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_enrollments_subscriber", table_name="enrollments")
    op.drop_index("ix_enrollments_sequence_state", table_name="enrollments")
    op.drop_table("enrollments")
    op.drop_index("ix_conditions_step_id", table_name="conditions")
    op.drop_table("conditions")
    op.drop_index("ix_steps_version_position", table_name="steps")
    op.drop_table("steps")
    op.drop_index(
        "uq_sequence_versions_one_active",
        table_name="sequence_versions",
        postgresql_where=sa.text("active"),
    )
    op.drop_table("sequence_versions")
    op.drop_table("http_hooks")
    op.drop_index("uq_sequences_tenant_key", table_name="sequences")
    op.drop_table("sequences")
    op.drop_index("uq_channel_adapters_name", table_name="channel_adapters")
    op.drop_index(
        "uq_channel_adapters_default",
        table_name="channel_adapters",
        postgresql_where=sa.text("is_default"),
    )
    op.drop_table("channel_adapters")
