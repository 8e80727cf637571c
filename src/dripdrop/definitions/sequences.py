"""Sequences and their versions."""

from __future__ import annotations

import importlib.util
import uuid
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from dripdrop.db import models as m
from dripdrop.definitions.common import (
    as_uuid,
    check_key,
    get_row,
    raise_if,
    require_text,
    tenant_clause,
    touch,
)
from dripdrop.definitions.inputs import (
    INT32_MAX,
    MAX_NAME_LENGTH,
    add,
    boolean,
    check_all,
    check_bool,
    check_identifier,
    check_json,
    check_tenant,
    describe,
    gather,
    integer,
    json_dict,
    text,
    unknown_keys,
)
from dripdrop.definitions.suppressions import check_category
from dripdrop.errors import NotFound, ValidationError
from dripdrop.records import Sequence, SequenceVersion, from_row
from dripdrop.runtime import Runtime

S = m.Sequence.__table__
V = m.SequenceVersion.__table__

# A version's settings; "metadata" holds the user's own fields.
_VERSION_CONFIG_KEYS = {
    "exit_events",
    "channel_rotation",
    "metadata",
    "goal",
    "quiet_hours",
    "frequency_caps",
}

# The type checks of each field, shared by create and update.
SEQUENCE_FIELDS = {
    "description": text(optional=True),
    "hook_module": text(MAX_NAME_LENGTH, optional=True),
    "active": boolean(),
    "metadata": json_dict(),
    "tenant_key": lambda v, f: check_tenant(v, f),
    "category": lambda v, f: check_category(v, f),
}


def _with_id_text(config: Any) -> Any:
    """The version config with adapter ids given as UUIDs (``adapter.id``) turned into text."""
    rotation = config.get("channel_rotation") if isinstance(config, dict) else None
    if not isinstance(rotation, dict):
        return config
    return {
        **config,
        "channel_rotation": {
            channel: [
                {**e, "adapter_id": str(e["adapter_id"])}
                if isinstance(e, dict) and isinstance(e.get("adapter_id"), uuid.UUID)
                else e
                for e in entries
            ]
            if isinstance(entries, list)
            else entries
            for channel, entries in rotation.items()
        },
    }


VERSION_FIELDS = {
    "version": integer(1, INT32_MAX, optional=True),
    "active": boolean(),
    "name": text(MAX_NAME_LENGTH, optional=True),
    "config": lambda v, f: check_json(_with_id_text(v), f),
}


def _check_hook_module(hook_module: Any, errors: dict[str, list[str]]) -> None:
    if hook_module is None:
        return
    if not isinstance(hook_module, str) or not hook_module.strip():
        errors.setdefault("hook_module", []).append("must be a module path like 'myapp.hooks'")
        return
    module = hook_module.split(":", 1)[0]
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        add(errors, "hook_module", f"module {describe(module)} cannot be imported")


def create_sequence(
    rt: Runtime,
    conn: Connection,
    *,
    name: str,
    key: str,
    description: str | None = None,
    hook_module: str | None = None,
    active: bool = True,
    metadata: dict[str, Any] | None = None,
    tenant_key: str | None = None,
    category: str | None = None,
) -> Sequence:
    """Create a sequence. ``key`` is unique per tenant. ``category`` (``marketing``,
    ``product``, ``transactional``…; None: uncategorised) scopes unsubscribes and suppressions:
    see docs/deliverability.md."""
    check_all(
        dict(
            description=description,
            hook_module=hook_module,
            active=active,
            metadata=metadata,
            tenant_key=tenant_key,
            category=category,
        ),
        SEQUENCE_FIELDS,
    )
    errors: dict[str, list[str]] = {}
    require_text(name, "name", errors)
    try:
        check_key(key)
    except ValidationError as exc:
        errors.update(exc.errors)
    _check_hook_module(hook_module, errors)
    raise_if(errors)
    exists = conn.execute(
        select(S.c.id).where(S.c.key == key, tenant_clause(S, tenant_key))
    ).first()
    if exists:
        raise ValidationError.single("key", f"a sequence with key {key!r} already exists")
    row = conn.execute(
        insert(S)
        .values(
            id=uuid.uuid4(),
            name=name,
            key=key,
            description=description,
            hook_module=hook_module,
            active=active,
            metadata=metadata or {},
            tenant_key=tenant_key,
            category=category,
        )
        .returning(S)
    ).one()
    return from_row(Sequence, row)


def check_sequence_lookup(key: Any, tenant_key: Any, field: str = "sequence_key") -> None:
    """A sequence key and tenant given by a caller (ValidationError naming ``field``)."""
    errors: dict[str, list[str]] = {}
    gather(errors, check_identifier, key, field)
    gather(errors, check_tenant, tenant_key, "tenant_key")
    raise_if(errors)


def get_sequence_row(
    conn: Connection, key: str, tenant_key: str | None = None, field: str = "sequence_key"
) -> Any:
    """The sequence of a key given by the caller (checked here: every lookup by key comes
    through, from get_sequence to enroll, enroll_many and simulate)."""
    check_sequence_lookup(key, tenant_key, field)
    row = conn.execute(select(S).where(S.c.key == key, tenant_clause(S, tenant_key))).first()
    if row is None:
        raise NotFound(f"sequence {key!r} not found")
    return row


def get_sequence_with_active_version(
    conn: Connection, key: str, tenant_key: str | None = None
) -> Any:
    """get_sequence_row and the id of its active version (``active_version_id``, None when
    none is active) in one query: what every enrollment looks up first."""
    check_sequence_lookup(key, tenant_key, "sequence_key")
    joined = S.outerjoin(V, and_(V.c.sequence_id == S.c.id, V.c.active))
    row = conn.execute(
        select(S, V.c.id.label("active_version_id"))
        .select_from(joined)
        .where(S.c.key == key, tenant_clause(S, tenant_key))
        .limit(1)
    ).first()
    if row is None:
        raise NotFound(f"sequence {key!r} not found")
    return row


def get_sequence(
    rt: Runtime, conn: Connection, key: str, *, tenant_key: str | None = None
) -> Sequence:
    """The sequence with this key (raises NotFound)."""
    return from_row(Sequence, get_sequence_row(conn, key, tenant_key, "key"))


def list_sequences(
    rt: Runtime, conn: Connection, *, tenant_key: str | None = None, active: bool | None = None
) -> list[Sequence]:
    """Every sequence of the tenant, by name."""
    check_tenant(tenant_key)
    check_bool(active, "active", optional=True)
    stmt = select(S).where(tenant_clause(S, tenant_key)).order_by(S.c.name)
    if active is not None:
        stmt = stmt.where(S.c.active == active)
    return [from_row(Sequence, r) for r in conn.execute(stmt)]


def update_sequence(rt: Runtime, conn: Connection, sequence_id: Any, **changes: Any) -> Sequence:
    """Change name, description, hook_module, active, metadata or category."""
    allowed = {"name", "description", "hook_module", "active", "metadata", "category"}
    unknown = set(changes) - allowed
    errors: dict[str, list[str]] = {k: ["cannot be changed"] for k in unknown}
    raise_if(errors)
    check_all(changes, SEQUENCE_FIELDS)
    if "name" in changes:
        require_text(changes["name"], "name", errors)
    if "hook_module" in changes:
        _check_hook_module(changes["hook_module"], errors)
    if "metadata" in changes and changes["metadata"] is None:
        changes["metadata"] = {}
    raise_if(errors)
    row = get_row(conn, S, sequence_id, "sequence")
    return from_row(Sequence, touch(conn, S, row.id, rt.now(), **changes))


def delete_sequence(rt: Runtime, conn: Connection, sequence_id: Any) -> None:
    """Delete a sequence with its versions, steps, enrollments and history."""
    row = get_row(conn, S, sequence_id, "sequence")
    conn.execute(delete(S).where(S.c.id == row.id))


def _check_version_config(config: Any, errors: dict[str, list[str]]) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, dict):
        errors.setdefault("config", []).append("must be a dict")
        return {}
    config = _with_id_text(config)
    for field, messages in unknown_keys(
        config, _VERSION_CONFIG_KEYS, "config", "put your own fields under 'metadata'"
    ).items():
        errors.setdefault(field, []).extend(messages)
    exits = config.get("exit_events")
    if exits is not None and (
        not isinstance(exits, list) or not all(isinstance(e, str) and e for e in exits)
    ):
        errors.setdefault("config.exit_events", []).append("must be a list of event keys")
    rotation = config.get("channel_rotation")
    if rotation is not None:
        from dripdrop.definitions.adapters import check_rotation

        check_rotation(rotation, errors)
    from dripdrop.definitions.flow import check_goal

    check_goal(config.get("goal"), errors)  # flow control: the version's goal event
    if config.get("quiet_hours") is not None:
        from dripdrop.engine.quiet_hours import check_quiet_hours

        try:
            check_quiet_hours(config["quiet_hours"], "config.quiet_hours")
        except ValidationError as exc:
            for field, messages in exc.errors.items():
                errors.setdefault(field, []).extend(messages)
    if config.get("frequency_caps") is not None:
        from dripdrop.engine.frequency_caps import check_caps

        try:
            check_caps(config["frequency_caps"], "config.frequency_caps")
        except ValidationError as exc:
            for field, messages in exc.errors.items():
                errors.setdefault(field, []).extend(messages)
    return config


def create_sequence_version(
    rt: Runtime,
    conn: Connection,
    sequence_id: Any,
    *,
    version: int | None = None,
    active: bool = False,
    name: str | None = None,
    config: dict[str, Any] | None = None,
) -> SequenceVersion:
    """Add a version (a draft unless ``active``); ``version`` defaults to the next number."""
    seq = get_row(conn, S, sequence_id, "sequence", lock=True)
    check_all(dict(version=version, active=active, name=name, config=config), VERSION_FIELDS)
    errors: dict[str, list[str]] = {}
    config = _check_version_config(config, errors)
    raise_if(errors)
    if version is None:
        version = (
            conn.execute(
                select(func.coalesce(func.max(V.c.version), 0)).where(V.c.sequence_id == seq.id)
            ).scalar_one()
            + 1
        )
    elif conn.execute(
        select(V.c.id).where(V.c.sequence_id == seq.id, V.c.version == version)
    ).first():
        raise ValidationError.single("version", f"version {version} already exists")
    row = conn.execute(
        insert(V)
        .values(
            id=uuid.uuid4(),
            sequence_id=seq.id,
            version=version,
            name=name,
            active=False,
            config=config,
            tenant_key=seq.tenant_key,
        )
        .returning(V)
    ).one()
    if active:
        return activate_version(rt, conn, row.id)
    return from_row(SequenceVersion, row)


def activate_version(
    rt: Runtime, conn: Connection, version_id: Any, *, force: bool = False
) -> SequenceVersion:
    """Make this version the active one (the others of its sequence are deactivated).

    A version whose steps cannot deliver (see ``check_version``) is refused with a
    ValidationError listing the problems, unless ``force=True``."""
    check_bool(force, "force")
    row = get_row(conn, V, version_id, "sequence version")
    if not force:
        from dripdrop.definitions.readiness import version_problems

        problems = version_problems(rt, conn, row.id)
        if problems:
            errors: dict[str, list[str]] = {}
            for p in problems:
                errors.setdefault(f"steps.{p.step_key}.{p.field}", []).append(p.message)
            raise ValidationError(
                errors,
                "this version cannot deliver — "
                + " | ".join(str(p) for p in problems)
                + " (fix these, or pass force=True to activate it anyway)",
            )
    now = rt.now()
    conn.execute(
        update(V)
        .where(V.c.sequence_id == row.sequence_id, V.c.active, V.c.id != row.id)
        .values(active=False, updated_at=now)
    )
    return from_row(SequenceVersion, touch(conn, V, row.id, now, active=True))


def deactivate_version(rt: Runtime, conn: Connection, version_id: Any) -> SequenceVersion:
    """Deactivate a version: no new enrollments; existing ones keep running."""
    row = get_row(conn, V, version_id, "sequence version")
    return from_row(SequenceVersion, touch(conn, V, row.id, rt.now(), active=False))


def update_sequence_version(
    rt: Runtime, conn: Connection, version_id: Any, *, name: Any = ..., config: Any = ...
) -> SequenceVersion:
    """Rename a version or replace its config."""
    row = get_row(conn, V, version_id, "sequence version")
    check_all(
        {k: v for k, v in (("name", name), ("config", config)) if v is not ...}, VERSION_FIELDS
    )
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    if name is not ...:
        values["name"] = name
    if config is not ...:
        values["config"] = _check_version_config(config, errors)
    raise_if(errors)
    return from_row(SequenceVersion, touch(conn, V, row.id, rt.now(), **values))


def list_versions(rt: Runtime, conn: Connection, sequence_id: Any) -> list[SequenceVersion]:
    """The versions of a sequence, oldest first."""
    sid = as_uuid(sequence_id, "sequence_id")
    rows = conn.execute(select(V).where(V.c.sequence_id == sid).order_by(V.c.version))
    return [from_row(SequenceVersion, r) for r in rows]


def get_active_version(rt: Runtime, conn: Connection, sequence_id: Any) -> SequenceVersion | None:
    """The active version of a sequence, if any."""
    sid = as_uuid(sequence_id, "sequence_id")
    row = conn.execute(select(V).where(V.c.sequence_id == sid, V.c.active)).first()
    return from_row(SequenceVersion, row) if row else None
