"""Migrations and models agree; setup is idempotent, stays in its schema and is safe to race."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from dripdrop import DripDrop
from dripdrop.db.engine import make_engine
from dripdrop.db.migrate import MIGRATIONS, upgrade
from dripdrop.db.models import Base
from dripdrop.errors import ValidationError
from dripdrop.testing import TestEnv

# The newest packaged migration: setup must leave every schema there.
HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()


def fresh_schema() -> str:
    return f"dd_dbtest_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def spare_schema(database_url: str) -> Iterator[str]:
    """A schema name nobody uses yet; dropped after the test whatever it holds."""
    name = fresh_schema()
    yield name
    engine = make_engine(database_url, name)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        engine.dispose()


def describe(conn: Connection, schema: str) -> dict[str, set[tuple]]:
    """Tables, columns, indexes and constraints of ``schema`` with the schema name erased."""

    def erase(value: str) -> str:
        return value.replace(f'"{schema}".', "").replace(f"{schema}.", "")

    params = {"s": schema}
    tables = {
        (r.table_name,)
        for r in conn.execute(
            text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = :s AND table_name <> 'alembic_version'"
            ),
            params,
        )
    }
    columns = {
        (
            r.table_name,
            r.column_name,
            r.data_type,
            r.character_maximum_length,
            r.is_nullable,
            r.column_default,
        )
        for r in conn.execute(
            text(
                "SELECT table_name, column_name, data_type, character_maximum_length, "
                "is_nullable, column_default FROM information_schema.columns "
                "WHERE table_schema = :s AND table_name <> 'alembic_version'"
            ),
            params,
        )
    }
    indexes = {
        (r.tablename, r.indexname, erase(r.indexdef))
        for r in conn.execute(
            text(
                "SELECT tablename, indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = :s AND tablename <> 'alembic_version'"
            ),
            params,
        )
    }
    constraints = {
        (r.relname, r.conname, r.contype, erase(r.definition))
        for r in conn.execute(
            text(
                "SELECT t.relname, c.conname, c.contype, pg_get_constraintdef(c.oid) AS definition "
                "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
                "JOIN pg_namespace n ON n.oid = t.relnamespace "
                "WHERE n.nspname = :s AND t.relname <> 'alembic_version' "
                "AND c.contype IN ('p', 'u', 'f', 'c')"
            ),
            params,
        )
    }
    storage = {
        (r.relname, tuple(r.reloptions or ()))
        for r in conn.execute(
            text(
                "SELECT c.relname, c.reloptions FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :s AND c.relkind = 'r' AND c.relname <> 'alembic_version'"
            ),
            params,
        )
    }
    return {
        "tables": tables,
        "columns": columns,
        "indexes": indexes,
        "constraints": constraints,
        "storage": storage,
    }


def test_migrations_produce_exactly_the_models_schema(database_url: str, spare_schema: str) -> None:
    migrated = TestEnv(database_url)  # setup() applied the migrations
    engine = make_engine(database_url, spare_schema)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{spare_schema}"'))
            Base.metadata.create_all(conn)
        with engine.connect() as conn:
            from_migrations = describe(conn, migrated.schema)
            from_models = describe(conn, spare_schema)
    finally:
        engine.dispose()
        migrated.close()
    assert {t for (t,) in from_models["tables"]} == set(Base.metadata.tables)
    for part in ("tables", "columns", "indexes", "constraints", "storage"):
        assert from_migrations[part] == from_models[part], part
    # The comparison saw the interesting parts, not empty sets.
    assert any("WHERE active" in d for (_, _, d) in from_models["indexes"])
    assert any(kind == "f" for (_, _, kind, _) in from_models["constraints"])
    assert ("enrollments", ("fillfactor=50",)) in from_models["storage"]


def test_setup_is_idempotent_and_records_one_revision(env: TestEnv) -> None:
    env.dd.setup()
    env.dd.setup()
    with env.dd.runtime.engine.connect() as conn:
        versions = (
            conn.execute(text(f'SELECT version_num FROM "{env.schema}".alembic_version'))
            .scalars()
            .all()
        )
        tables = conn.execute(
            text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"),
            {"s": env.schema},
        ).scalar_one()
    assert versions == [HEAD]
    assert tables == len(Base.metadata.tables) + 1  # + alembic_version
    # Still usable after re-running setup.
    assert env.dd.create_sequence(name="After", key="after").key == "after"


def test_setup_creates_nothing_in_public(database_url: str) -> None:
    ours = set(Base.metadata.tables) | {"alembic_version"}
    for table in Base.metadata.tables.values():
        ours |= {ix.name for ix in table.indexes if ix.name}
    env = TestEnv(database_url)
    try:
        with env.dd.runtime.engine.connect() as conn:
            in_public = set(
                conn.execute(
                    text(
                        "SELECT c.relname FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = 'public'"
                    )
                ).scalars()
            )
            in_schema = set(
                conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = :s"),
                    {"s": env.schema},
                ).scalars()
            )
    finally:
        env.close()
    assert in_public & ours == set()
    assert in_schema == set(Base.metadata.tables) | {"alembic_version"}


def test_two_schemas_in_one_database_never_see_each_other(database_url: str) -> None:
    first, second = TestEnv(database_url), TestEnv(database_url)
    try:
        a = first.dd.create_sequence(name="In first", key="onboarding")
        b = second.dd.create_sequence(name="In second", key="onboarding")
        assert [s.id for s in first.dd.list_sequences()] == [a.id]
        assert [s.id for s in second.dd.list_sequences()] == [b.id]
        assert first.dd.get_sequence("onboarding").name == "In first"
        assert second.dd.get_sequence("onboarding").name == "In second"
        first.dd.create_channel_adapter(name="Mem", channel="email", provider="memory")
        assert second.dd.list_channel_adapters() == []
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("name", ["Bad-Name", "pg_x", "1abc", "a;drop", "x" * 64, "UPPER"])
def test_invalid_schema_names_are_rejected(database_url: str, name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DripDrop(database_url, schema=name)
    assert set(caught.value.errors) == {"schema"}


def test_valid_schema_name_is_accepted(database_url: str) -> None:
    # 54 characters: the longest whose NOTIFY channel ("dripdrop_<schema>") fits in 63 bytes
    dd = DripDrop(database_url, schema="ok_name_1" + "x" * 45)
    try:
        assert dd.schema == "ok_name_1" + "x" * 45
    finally:
        dd.close()


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_upgrades_of_a_fresh_schema_both_succeed(
    database_url: str, spare_schema: str, round_: int
) -> None:
    engines = [make_engine(database_url, spare_schema) for _ in range(2)]
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def run(engine) -> None:
        try:
            start.wait()
            upgrade(engine, spare_schema)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        with engines[0].connect() as conn:
            versions = (
                conn.execute(text(f'SELECT version_num FROM "{spare_schema}".alembic_version'))
                .scalars()
                .all()
            )
    finally:
        for e in engines:
            e.dispose()
    assert failures == []
    assert versions == [HEAD]


def test_notifications_migration_applies_over_existing_duplicates(
    database_url: str, spare_schema: str
) -> None:
    # Before 0004 a redelivered execution could leave several notifications: the oldest stays
    # (read if any copy was), the others go, and rows of no execution are left alone.
    engine = make_engine(database_url, spare_schema)
    s = f'"{spare_schema}"'
    twice, thrice = uuid.uuid4(), uuid.uuid4()
    rows = [
        (twice, "2026-01-01 00:00:02+00", None),
        (twice, "2026-01-01 00:00:01+00", None),  # the oldest of `twice`
        (thrice, "2026-01-01 00:00:01+00", None),  # the oldest of `thrice`
        (thrice, "2026-01-01 00:00:03+00", "2026-01-02 00:00:00+00"),
        (thrice, "2026-01-01 00:00:02+00", "2026-01-03 00:00:00+00"),
        (None, "2026-01-01 00:00:00+00", None),
        (None, "2026-01-01 00:00:00+00", None),
    ]
    try:
        upgrade(engine, spare_schema, "0003")
        with engine.begin() as conn:
            for n, (execution, at, read) in enumerate(rows):
                conn.execute(
                    text(
                        f"INSERT INTO {s}.notifications (topic, event, execution_id, "
                        "inserted_at, read_at) VALUES ('t', :event, :x, :at, :read)"
                    ),
                    {"event": str(n), "x": execution, "at": at, "read": read},
                )
        upgrade(engine, spare_schema)
        with engine.connect() as conn:
            version = conn.execute(text(f"SELECT version_num FROM {s}.alembic_version")).scalar()
            left = conn.execute(
                text(
                    f"SELECT event, execution_id, read_at IS NOT NULL AS read "
                    f"FROM {s}.notifications ORDER BY event"
                )
            ).all()
            conn.rollback()
            with pytest.raises(IntegrityError), conn.begin():
                conn.execute(
                    text(f"INSERT INTO {s}.notifications (topic, execution_id) VALUES ('t', :x)"),
                    {"x": twice},
                )
    finally:
        engine.dispose()
    assert version == HEAD
    assert [tuple(r) for r in left] == [
        ("1", twice, False),
        ("2", thrice, True),
        ("5", None, False),
        ("6", None, False),
    ]


def _step_references(conn: Connection, schema: str) -> tuple[set[str], set[str]]:
    """(foreign keys to steps, triggers) of the schema."""
    fks = conn.execute(
        text(
            "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname = :s AND c.contype = 'f' AND conname LIKE '%_steps'"
        ),
        {"s": schema},
    ).scalars()
    triggers = conn.execute(
        text(
            "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :s AND NOT t.tgisinternal"
            # the analytics rollups' triggers (0011) are not step references
            " AND tgname NOT LIKE 'analytics%'"
        ),
        {"s": schema},
    ).scalars()
    return set(fks) - {"fk_conditions_step_id_steps"}, set(triggers)


def test_step_references_go_from_triggers_back_to_foreign_keys_and_back(
    database_url: str, spare_schema: str
) -> None:
    from alembic import command

    from dripdrop.db.migrate import alembic_config

    engine = make_engine(database_url, spare_schema)
    keys = {"fk_step_executions_step_id_steps", "fk_enrollments_current_step_id_steps"}
    try:
        upgrade(engine, spare_schema, "0004")
        with engine.connect() as conn:
            assert _step_references(conn, spare_schema) == (set(), _TRIGGERS)
        upgrade(engine, spare_schema)
        # Flow control's own references to steps (0010) exist at the head too.
        flow = {
            "fk_enrollments_conversion_step_id_steps",
            "fk_transitions_from_step_id_steps",
            "fk_transitions_to_step_id_steps",
        }
        with engine.connect() as conn:
            assert _step_references(conn, spare_schema) == (keys | flow, set())
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn, spare_schema), "0004")
        with engine.connect() as conn:
            assert _step_references(conn, spare_schema) == (set(), _TRIGGERS)
    finally:
        engine.dispose()


_TRIGGERS = {
    "steps_cascade_delete",
    "step_executions_steps_insert",
    "step_executions_steps_update",
    "enrollments_steps_insert",
    "enrollments_steps_update",
}
