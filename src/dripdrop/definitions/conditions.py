"""Conditions on steps: enrollment data, hooks, event counts and time windows."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from dripdrop.datapath import path_error
from dripdrop.db import models as m
from dripdrop.definitions.common import as_uuid, get_row, raise_if, touch
from dripdrop.definitions.inputs import (
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    add,
    check_all,
    check_json,
    describe,
    json_dict,
    text,
    unknown_keys,
)
from dripdrop.errors import ValidationError
from dripdrop.records import Condition, from_row
from dripdrop.runtime import Runtime

C = m.Condition.__table__
ST = m.Step.__table__
H = m.HttpHook.__table__
V = m.SequenceVersion.__table__
TR = m.Transition.__table__

CONDITION_TYPES = ("enrollment_data", "hook", "event", "time_window", "throttle")
OPERATORS = ("eq", "neq", "gt", "lt", "gte", "lte", "in", "not_in", "contains", "exists")
# What each condition type reads from its config ("metadata" holds the user's own fields).
CONFIG_KEYS = {
    "event": {"event_key"},
    "time_window": {"timezone", "timezone_field", "days", "start", "end"},
    "throttle": {"max_sends", "window_amount", "window_unit"},
}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
# Expected values are compared as text: a few kilobytes is plenty (a list for "in").
MAX_EXPECTED_SIZE = 10_000

# The type checks of each field, shared by create and update (the meaning is checked after).
CONDITION_FIELDS = {
    "condition_type": text(32, optional=True),
    "field_path": text(1_000, optional=True),
    "operator": text(16),
    "expected_value": lambda v, f: check_json(v, f, expect_dict=False, max_size=MAX_EXPECTED_SIZE),
    "hook_function": text(MAX_NAME_LENGTH, optional=True),
    "http_hook_id": lambda v, f: None if v is None else as_uuid(v, f),
    "config": json_dict(max_size=100_000),
}


def _expected_text(value: Any) -> str | None:
    """Expected values are stored as text; lists (for in/not_in) as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    return str(value)


def _check_time_window(config: Any, errors: dict[str, list[str]]) -> None:
    from dripdrop.timing.cron import load_zone

    if not isinstance(config, dict):
        errors["config"] = ["a time_window condition needs config with days, start and end"]
        return
    tz, tz_field = config.get("timezone"), config.get("timezone_field")
    if tz is None and tz_field is None:
        errors["config.timezone"] = ["give timezone or timezone_field"]
    if tz is not None:
        try:
            load_zone(tz, "config.timezone")
        except ValidationError as exc:
            errors.update(exc.errors)
    if tz_field is not None and (
        not isinstance(tz_field, str) or not tz_field or len(tz_field) > MAX_ID_LENGTH
    ):
        errors["config.timezone_field"] = [
            f"must be a field path of 1 to {MAX_ID_LENGTH} characters"
        ]
    days = config.get("days", list(DAYS))
    if (
        not isinstance(days, list)
        or not days
        or any(not isinstance(d, str) or d.lower() not in DAYS + FULL_DAYS for d in days)
    ):
        errors["config.days"] = [f"must be a non-empty list of {', '.join(DAYS)}"]
    for key in ("start", "end"):
        if not isinstance(config.get(key), str) or not _HHMM.fullmatch(config[key]):
            errors[f"config.{key}"] = ["must be a time HH:MM (24-hour)"]
    valid_times = "config.start" not in errors and "config.end" not in errors
    if valid_times and config["start"] == config["end"]:
        # An empty window never opens: every step behind it would wait forever.
        errors["config.end"] = [
            "must differ from start (the window would be empty; 22:00-06:00 spans midnight)"
        ]


def validate_condition(
    conn: Connection,
    step_row: Any,
    condition_type: str,
    operator: str,
    field_path: Any,
    hook_function: Any,
    http_hook_id: Any,
    config: Any,
) -> None:
    """Collect every problem of a condition into one ValidationError."""
    errors: dict[str, list[str]] = {}
    if condition_type not in CONDITION_TYPES:
        errors["condition_type"] = [
            f"unknown condition type {describe(condition_type)}; expected one of "
            f"{', '.join(CONDITION_TYPES)}"
        ]
    if condition_type not in ("time_window", "throttle") and operator not in OPERATORS:
        errors["operator"] = [
            f"unknown operator {describe(operator)}; expected one of {', '.join(OPERATORS)}"
        ]
    if config is not None and not isinstance(config, dict):
        errors["config"] = ["must be a dict"]
    elif config and condition_type in CONDITION_TYPES:
        allowed = CONFIG_KEYS.get(condition_type, set()) | {"metadata"}
        errors.update(unknown_keys(config, allowed, "config"))
    if condition_type == "enrollment_data":
        if not isinstance(field_path, str) or not field_path.strip():
            errors["field_path"] = ["is required for an enrollment_data condition"]
        elif problem := path_error(field_path):
            errors["field_path"] = [problem]
    elif condition_type == "hook":
        if not hook_function and not http_hook_id:
            errors["hook_function"] = ["a hook condition needs hook_function or http_hook_id"]
        if http_hook_id:
            try:
                hid = as_uuid(http_hook_id, "http_hook_id")
                seq_id = conn.execute(
                    select(V.c.sequence_id).where(V.c.id == step_row.sequence_version_id)
                ).scalar_one()
                hook = conn.execute(select(H.c.sequence_id).where(H.c.id == hid)).first()
                if hook is None or hook.sequence_id != seq_id:
                    # One answer for both: another tenant's hook must not show it exists.
                    errors["http_hook_id"] = [f"HTTP hook {hid} does not exist in this sequence"]
            except ValidationError as exc:
                errors.update(exc.errors)
    elif condition_type == "event":
        key = (config or {}).get("event_key") if isinstance(config, dict) else None
        if not isinstance(key, str) or not key:
            errors["config.event_key"] = ["an event condition needs config={'event_key': ...}"]
        elif len(key) > MAX_ID_LENGTH:
            add(errors, "config.event_key", f"is too long (at most {MAX_ID_LENGTH} characters)")
    elif condition_type == "time_window":
        _check_time_window(config, errors)
    elif condition_type == "throttle":
        from dripdrop.definitions.flow import check_throttle

        check_throttle(config, errors)
        if getattr(step_row, "from_step_id", None) and step_row.to_step_id is None:
            errors["condition_type"] = [
                "a throttle on a transition counts its target's sends: "
                "this transition goes to the end"
            ]
    raise_if(errors)


def create_condition(
    rt: Runtime,
    conn: Connection,
    step_id: Any = None,
    *,
    transition_id: Any = None,
    condition_type: str | None = None,
    field_path: str | None = None,
    operator: str = "eq",
    expected_value: Any = None,
    hook_function: str | None = None,
    http_hook_id: Any = None,
    config: dict[str, Any] | None = None,
) -> Condition:
    """Add a condition to a step, or to a transition (``transition_id=``). Given only
    ``http_hook_id`` (or ``hook_function``) it is a hook condition; otherwise
    ``condition_type`` defaults to ``enrollment_data``."""
    if (step_id is None) == (transition_id is None):
        raise ValidationError.single("step_id", "give step_id or transition_id (exactly one)")
    if transition_id is not None:
        step = get_row(conn, TR, transition_id, "transition", lock=True)
    else:
        step = get_row(conn, ST, step_id, "step")
    check_all(
        dict(
            condition_type=condition_type,
            field_path=field_path,
            operator=operator,
            expected_value=expected_value,
            hook_function=hook_function,
            http_hook_id=http_hook_id,
            config=config,
        ),
        CONDITION_FIELDS,
    )
    if condition_type is None:
        condition_type = "hook" if (http_hook_id or hook_function) else "enrollment_data"
    validate_condition(
        conn, step, condition_type, operator, field_path, hook_function, http_hook_id, config
    )
    row = conn.execute(
        insert(C)
        .values(
            id=uuid.uuid4(),
            step_id=step.id if transition_id is None else None,
            transition_id=step.id if transition_id is not None else None,
            condition_type=condition_type,
            operator=operator,
            field_path=field_path,
            expected_value=_expected_text(expected_value),
            hook_function=hook_function,
            http_hook_id=as_uuid(http_hook_id) if http_hook_id else None,
            config=config or {},
            tenant_key=step.tenant_key,
        )
        .returning(C)
    ).one()
    return from_row(Condition, row)


def update_condition(rt: Runtime, conn: Connection, condition_id: Any, **changes: Any) -> Condition:
    """Change a condition; it is re-validated as a whole."""
    row = get_row(conn, C, condition_id, "condition")
    allowed = {
        "condition_type",
        "field_path",
        "operator",
        "expected_value",
        "hook_function",
        "http_hook_id",
        "config",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({k: ["cannot be changed"] for k in unknown})
    check_all(changes, {**CONDITION_FIELDS, "condition_type": text(32)})
    merged = {k: changes.get(k, getattr(row, k)) for k in allowed}
    if row.transition_id is not None:
        step = get_row(conn, TR, row.transition_id, "transition")
    else:
        step = get_row(conn, ST, row.step_id, "step")
    validate_condition(
        conn,
        step,
        merged["condition_type"],
        merged["operator"],
        merged["field_path"],
        merged["hook_function"],
        merged["http_hook_id"],
        merged["config"],
    )
    if "expected_value" in changes:
        changes["expected_value"] = _expected_text(changes["expected_value"])
    if "config" in changes and changes["config"] is None:
        changes["config"] = {}  # the column is NOT NULL: None means "no config"
    return from_row(Condition, touch(conn, C, row.id, rt.now(), **changes))


def delete_condition(rt: Runtime, conn: Connection, condition_id: Any) -> None:
    """Remove a condition."""
    row = get_row(conn, C, condition_id, "condition")
    conn.execute(delete(C).where(C.c.id == row.id))


def list_conditions(
    rt: Runtime, conn: Connection, step_id: Any = None, *, transition_id: Any = None
) -> list[Condition]:
    """The conditions of a step (or of a transition: ``transition_id=``), oldest first."""
    if (step_id is None) == (transition_id is None):
        raise ValidationError.single("step_id", "give step_id or transition_id (exactly one)")
    owner = (
        C.c.step_id == as_uuid(step_id, "step_id")
        if transition_id is None
        else C.c.transition_id == as_uuid(transition_id, "transition_id")
    )
    rows = conn.execute(select(C).where(owner).order_by(C.c.inserted_at))
    return [from_row(Condition, r) for r in rows]
