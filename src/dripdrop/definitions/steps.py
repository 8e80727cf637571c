"""Steps of a sequence version."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from dripdrop.channels.base import CHANNELS
from dripdrop.channels.registry import step_fields
from dripdrop.db import models as m
from dripdrop.definitions.common import (
    as_uuid,
    check_key,
    get_row,
    raise_if,
    require_text,
    slugify,
    touch,
)
from dripdrop.definitions.flow import SPLIT, check_flow_settings
from dripdrop.definitions.inputs import (
    INT32_MAX,
    MAX_NAME_LENGTH,
    boolean,
    check_all,
    check_json,
    describe,
    integer,
    json_any,
    text,
    unknown_keys,
)
from dripdrop.errors import DripDropError, ValidationError
from dripdrop.records import Step, from_row
from dripdrop.runtime import Runtime
from dripdrop.templates import ENGINES, validate_config_templates
from dripdrop.timing import normalize_timing

V = m.SequenceVersion.__table__
ST = m.Step.__table__
A = m.ChannelAdapter.__table__

TEMPLATE_TYPES = ("inline", "module", "external")
# Flow settings any delivering step may hold (a split step holds only ``split``).
FLOW_SETTINGS = frozenset({"repeat", "digest"})
ON_FAILURE = ("continue", "halt")


def check_templates(
    config: dict[str, Any], engine: str = "liquid", field_prefix: str = "config"
) -> None:
    """Compile every template of ``config``, one top-level key at a time so that whatever else an
    engine raises on hostile text (RecursionError on deep nesting in Jinja or Mustache, ValueError
    on a 5000-digit literal, a missing include) becomes a ValidationError on that key: a
    template that cannot be compiled cannot be sent."""
    errors: dict[str, list[str]] = {}
    for key, value in config.items():
        field = f"{field_prefix}.{key}" if field_prefix else str(key)
        try:
            validate_config_templates({key: value}, engine, field_prefix=field_prefix)
        except ValidationError as exc:
            errors.update(exc.errors)
        except DripDropError:
            raise
        except RecursionError:
            errors[field] = ["template is nested too deeply to compile"]
        except Exception as exc:  # the engines' own errors: the input is at fault, not us
            errors[field] = [f"template cannot be compiled: {_first_line(exc)}"]
    if errors:
        raise ValidationError(errors)


def _first_line(exc: Exception) -> str:
    try:
        line = str(exc).strip().splitlines()[0][:200]
    except Exception:  # str() of an error about a huge value may itself fail
        line = ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _check_config(config: Any, field: str) -> Any:
    """A JSON dict, except that channel_adapter_rotation may hold UUIDs (stored as text)."""
    rotation = config.get("channel_adapter_rotation") if isinstance(config, dict) else None
    if isinstance(rotation, list):
        ids = [str(a) if isinstance(a, uuid.UUID) else a for a in rotation]
        check_json(ids, f"{field}.channel_adapter_rotation", expect_dict=False, max_size=10_000)
        config = {k: v for k, v in config.items() if k != "channel_adapter_rotation"}
    return check_json(config, field)


# The type checks of each field, shared by create and update (the meaning is checked after).
STEP_FIELDS = {
    "channel": text(32),
    "position": integer(0, INT32_MAX, optional=True),
    "config": _check_config,
    "template_type": text(16),
    "template_content": json_any(),
    "template_module": text(MAX_NAME_LENGTH, optional=True),
    "template_function": text(MAX_NAME_LENGTH, optional=True),
    "channel_adapter_id": lambda v, f: None if v is None else as_uuid(v, f),
    "active": boolean(),
}


def _check_adapter(
    conn: Connection, adapter_id: Any, channel: str, field: str, errors: dict[str, list[str]]
) -> uuid.UUID | None:
    try:
        aid = as_uuid(adapter_id, field)
    except ValidationError as exc:
        errors.update(exc.errors)
        return None
    row = conn.execute(select(A.c.channel).where(A.c.id == aid)).first()
    if row is None:
        errors.setdefault(field, []).append(f"channel adapter {aid} does not exist")
    elif row.channel != channel:
        errors.setdefault(field, []).append(
            f"adapter {aid} is for channel {row.channel!r}, not {channel!r}"
        )
    return aid


def validate_step(
    conn: Connection,
    *,
    channel: Any,
    timing: Any,
    config: Any,
    template_type: Any,
    template_content: Any,
    template_module: Any,
    template_function: Any,
    channel_adapter_id: Any,
    check_keys: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a step's fields, collecting every problem; return (timing, config) normalised.
    ``check_keys=False`` spares a stored config the unknown-key check when it is not changed."""
    errors: dict[str, list[str]] = {}
    if channel == SPLIT:  # a step that only chooses a branch (definitions/flow.py)
        if check_keys and isinstance(config, dict):
            errors.update(unknown_keys(config, {"split", "metadata"}, "config"))
    elif channel not in CHANNELS:
        errors["channel"] = [
            f"unknown channel {describe(channel)}; expected one of "
            f"{', '.join(CHANNELS)} (or {SPLIT!r})"
        ]
    elif check_keys and isinstance(config, dict):
        errors.update(
            unknown_keys(
                config,
                step_fields(channel) | FLOW_SETTINGS,
                "config",
                "put your own fields under 'metadata'",
            )
        )
    norm_timing: dict[str, Any] = {}
    try:
        norm_timing = normalize_timing(timing)
    except ValidationError as exc:
        errors.update(exc.errors)
    if config is None:
        config = {}
    if not isinstance(config, dict):
        errors["config"] = ["must be a dict"]
        config = {}
    engine = config.get("template_engine", "liquid")
    if engine not in ENGINES:
        errors["config.template_engine"] = [
            f"unknown template engine {describe(engine)}; expected one of {', '.join(ENGINES)}"
        ]
    else:
        try:
            check_templates(config, engine)
        except ValidationError as exc:
            errors.update(exc.errors)
    if not isinstance(config.get("metadata", {}), dict):
        errors["config.metadata"] = ["must be a dict of your own fields"]
    check_flow_settings(channel, config, norm_timing, errors)
    if "quiet_hours" in config:
        from dripdrop.engine.quiet_hours import check_quiet_hours

        try:
            check_quiet_hours(config["quiet_hours"], "config.quiet_hours")
        except ValidationError as exc:
            errors.update(exc.errors)
    if not isinstance(config.get("frequency_cap", False), bool):
        errors["config.frequency_cap"] = [
            "must be false (never capped) or true (capped even in a transactional sequence)"
        ]
    if config.get("on_failure", "continue") not in ON_FAILURE:
        errors["config.on_failure"] = ["must be 'continue' or 'halt'"]
    retries = config.get("max_retries", 3)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 100:
        errors["config.max_retries"] = ["must be an integer from 0 to 100"]
    rotation = config.get("channel_adapter_rotation")
    if rotation is not None:
        if not isinstance(rotation, list) or not rotation:
            errors["config.channel_adapter_rotation"] = ["must be a non-empty list of adapter ids"]
        else:
            ids = [
                _check_adapter(conn, a, channel, "config.channel_adapter_rotation", errors)
                for a in rotation
            ]
            config = {**config, "channel_adapter_rotation": [str(i) for i in ids if i]}
    if template_type not in TEMPLATE_TYPES:
        errors["template_type"] = [f"must be one of {', '.join(TEMPLATE_TYPES)}"]
    elif template_type == "module":
        if not template_module:
            errors["template_module"] = ["is required when template_type is 'module'"]
        if not template_function:
            errors["template_function"] = ["is required when template_type is 'module'"]
    elif template_type == "external":
        url = (template_content or {}).get("url") if isinstance(template_content, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            errors["template_content.url"] = [
                "an external template needs template_content={'url': 'https://…'}"
            ]
    if channel == SPLIT and (
        channel_adapter_id is not None or config.get("channel_adapter_rotation")
    ):
        errors["channel_adapter_id"] = ["a split step delivers nothing: it takes no adapter"]
    if channel_adapter_id is not None and channel in CHANNELS:
        _check_adapter(conn, channel_adapter_id, channel, "channel_adapter_id", errors)
    raise_if(errors)
    return norm_timing, config


def create_step(
    rt: Runtime,
    conn: Connection,
    version_id: Any,
    *,
    name: str,
    channel: str,
    key: str | None = None,
    position: int | None = None,
    timing: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    template_type: str = "inline",
    template_content: Any = None,
    template_module: str | None = None,
    template_function: str | None = None,
    channel_adapter_id: Any = None,
    active: bool = True,
) -> Step:
    """Add a step to a version. ``key`` defaults to a slug of ``name``; ``position`` appends."""
    version = get_row(conn, V, version_id, "sequence version", lock=True)
    check_all(
        dict(
            channel=channel,
            position=position,
            timing=timing,
            config=config,
            template_type=template_type,
            template_content=template_content,
            template_module=template_module,
            template_function=template_function,
            channel_adapter_id=channel_adapter_id,
            active=active,
        ),
        STEP_FIELDS,
    )
    errors: dict[str, list[str]] = {}
    require_text(name, "name", errors)
    if key is None and isinstance(name, str) and "name" not in errors:
        key = slugify(name)
    try:
        check_key(key)
    except ValidationError as exc:
        errors.update(exc.errors)
    raise_if(errors)
    norm_timing, config = validate_step(
        conn,
        channel=channel,
        timing=timing,
        config=config,
        template_type=template_type,
        template_content=template_content,
        template_module=template_module,
        template_function=template_function,
        channel_adapter_id=channel_adapter_id,
    )
    if conn.execute(
        select(ST.c.id).where(ST.c.sequence_version_id == version.id, ST.c.key == key)
    ).first():
        raise ValidationError.single(
            "key", f"a step with key {key!r} already exists in this version"
        )
    if position is None:
        position = (
            conn.execute(
                select(func.coalesce(func.max(ST.c.position), 0)).where(
                    ST.c.sequence_version_id == version.id
                )
            ).scalar_one()
            + 1
        )
    row = conn.execute(
        insert(ST)
        .values(
            id=uuid.uuid4(),
            sequence_version_id=version.id,
            name=name,
            key=key,
            position=position,
            channel=channel,
            timing=norm_timing,
            config=config,
            template_type=template_type,
            template_content=template_content,
            template_module=template_module,
            template_function=template_function,
            channel_adapter_id=as_uuid(channel_adapter_id) if channel_adapter_id else None,
            active=active,
            tenant_key=version.tenant_key,
        )
        .returning(ST)
    ).one()
    return from_row(Step, row)


def update_step(rt: Runtime, conn: Connection, step_id: Any, **changes: Any) -> Step:
    """Change a step's fields; the whole step is re-validated."""
    row = get_row(conn, ST, step_id, "step")
    allowed = {
        "name",
        "position",
        "channel",
        "timing",
        "config",
        "template_type",
        "template_content",
        "template_module",
        "template_function",
        "channel_adapter_id",
        "active",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({k: ["cannot be changed"] for k in unknown})
    # position=None means "append" on create, but a stored step needs one.
    check_all(changes, {**STEP_FIELDS, "position": integer(0, INT32_MAX)})
    merged = {k: changes.get(k, getattr(row, k)) for k in allowed}
    errors: dict[str, list[str]] = {}
    if "name" in changes:
        require_text(changes["name"], "name", errors)
    timing, config = {}, {}
    try:
        timing, config = validate_step(
            conn,
            channel=merged["channel"],
            timing=merged["timing"],
            config=merged["config"],
            template_type=merged["template_type"],
            template_content=merged["template_content"],
            template_module=merged["template_module"],
            template_function=merged["template_function"],
            channel_adapter_id=merged["channel_adapter_id"],
            check_keys="config" in changes or "channel" in changes,
        )
    except ValidationError as exc:
        errors.update(exc.errors)
    raise_if(errors)
    values = dict(changes)
    if "timing" in changes:
        values["timing"] = timing
    if "config" in changes:
        values["config"] = config
    return from_row(Step, touch(conn, ST, row.id, rt.now(), **values))


def deactivate_step(rt: Runtime, conn: Connection, step_id: Any) -> Step:
    """Skip this step from now on (enrollments move past it); history is kept."""
    return update_step(rt, conn, step_id, active=False)


def delete_step(rt: Runtime, conn: Connection, step_id: Any) -> None:
    """Delete a step with its conditions and execution history (prefer deactivate_step)."""
    row = get_row(conn, ST, step_id, "step")
    conn.execute(delete(ST).where(ST.c.id == row.id))


def get_step(rt: Runtime, conn: Connection, step_id: Any) -> Step:
    """One step by id."""
    return from_row(Step, get_row(conn, ST, step_id, "step"))


def list_steps(rt: Runtime, conn: Connection, version_id: Any) -> list[Step]:
    """The steps of a version in position order."""
    rows = conn.execute(
        select(ST)
        .where(ST.c.sequence_version_id == as_uuid(version_id, "version_id"))
        .order_by(ST.c.position, ST.c.inserted_at)
    )
    return [from_row(Step, r) for r in rows]
