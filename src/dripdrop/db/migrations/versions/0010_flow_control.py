"""Flow control: transitions, splits, goals and exits, recurring steps, digests.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

- ``transitions``: the edges of a version's graph (from a step to a step, or to the end), tried
  in ascending ``priority`` after the step finishes.
- ``conditions.transition_id``: a condition belongs to a step or to a transition, never both
  (``ck_conditions_one_owner``).
- ``enrollments``: why it ended (``exit_reason``), and a goal's conversion (``converted_at``,
  ``conversion_step_id``: the last step sent before it).
- ``step_executions``: the split branch an execution chose (``branch``) and which occurrence of
  a recurring step it is (``occurrence``; NULL for the chain's own execution).
  ``ix_step_executions_branch`` counts a split's branches without reading other steps' rows.
"""

from __future__ import annotations

from alembic import context, op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"""
        CREATE TABLE {s}.transitions (
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            sequence_version_id uuid NOT NULL,
            from_step_id uuid NOT NULL,
            to_step_id uuid,
            condition_mode varchar(8) NOT NULL DEFAULT 'always',
            priority integer NOT NULL DEFAULT 0,
            tenant_key text,
            inserted_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_transitions PRIMARY KEY (id),
            CONSTRAINT fk_transitions_sequence_version_id_sequence_versions
                FOREIGN KEY (sequence_version_id) REFERENCES {s}.sequence_versions (id)
                ON DELETE CASCADE,
            CONSTRAINT fk_transitions_from_step_id_steps
                FOREIGN KEY (from_step_id) REFERENCES {s}.steps (id) ON DELETE CASCADE,
            CONSTRAINT fk_transitions_to_step_id_steps
                FOREIGN KEY (to_step_id) REFERENCES {s}.steps (id) ON DELETE CASCADE
        )
    """)
    op.execute(
        f"CREATE INDEX ix_transitions_from_step_id_priority "
        f"ON {s}.transitions (from_step_id, priority)"
    )
    op.execute(f"CREATE INDEX ix_transitions_to_step_id ON {s}.transitions (to_step_id)")
    op.execute(
        f"CREATE INDEX ix_transitions_sequence_version_id ON {s}.transitions (sequence_version_id)"
    )
    op.execute(f"ALTER TABLE {s}.conditions ALTER COLUMN step_id DROP NOT NULL")
    op.execute(f"""
        ALTER TABLE {s}.conditions
            ADD COLUMN transition_id uuid
                CONSTRAINT fk_conditions_transition_id_transitions
                REFERENCES {s}.transitions (id) ON DELETE CASCADE,
            ADD CONSTRAINT ck_conditions_one_owner
                CHECK ((step_id IS NULL) <> (transition_id IS NULL))
    """)
    op.execute(f"CREATE INDEX ix_conditions_transition_id ON {s}.conditions (transition_id)")
    op.execute(f"""
        ALTER TABLE {s}.enrollments
            ADD COLUMN exit_reason varchar(32),
            ADD COLUMN converted_at timestamptz,
            ADD COLUMN conversion_step_id uuid
                CONSTRAINT fk_enrollments_conversion_step_id_steps
                REFERENCES {s}.steps (id) ON DELETE SET NULL
    """)
    op.execute(
        f"CREATE INDEX ix_enrollments_conversion_step_id ON {s}.enrollments (conversion_step_id)"
    )
    op.execute(f"""
        ALTER TABLE {s}.step_executions
            ADD COLUMN branch text,
            ADD COLUMN occurrence integer
    """)
    op.execute(
        f"CREATE INDEX ix_step_executions_branch ON {s}.step_executions (step_id, branch) "
        f"WHERE branch IS NOT NULL"
    )


def downgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    op.execute(f"DROP INDEX {s}.ix_step_executions_branch")
    op.execute(f"ALTER TABLE {s}.step_executions DROP COLUMN branch, DROP COLUMN occurrence")
    op.execute(
        f"ALTER TABLE {s}.enrollments DROP COLUMN exit_reason, DROP COLUMN converted_at, "
        f"DROP COLUMN conversion_step_id"
    )
    op.execute(f"DELETE FROM {s}.conditions WHERE transition_id IS NOT NULL")
    op.execute(
        f"ALTER TABLE {s}.conditions DROP CONSTRAINT ck_conditions_one_owner, "
        f"DROP COLUMN transition_id"
    )
    op.execute(f"ALTER TABLE {s}.conditions ALTER COLUMN step_id SET NOT NULL")
    op.execute(f"DROP TABLE {s}.transitions")
