"""REST routes: steps, conditions, channel adapters, HTTP hooks.

Steps and conditions follow their sequence's tenant (``write`` changes them, ``read`` reads
them). Channel adapters and HTTP hooks hold credentials: every route of theirs needs ``admin``,
and their answers never carry ``credentials`` / ``auth_config`` (``encode`` replaces them with
the names of the fields that are set).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from dripdrop.definitions.adapters import adapter_record
from dripdrop.definitions.common import as_uuid
from dripdrop.errors import ValidationError
from dripdrop.records import Condition, HttpHook, Step
from dripdrop.web.auth import Principal, require
from dripdrop.web.encode import encode, parse_cursor
from dripdrop.web.routes.common import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Body,
    dd_of,
    m,
    page,
    record_by_id,
    rows,
    select,
)
from dripdrop.web.routes.sequences import sequence, version

router = APIRouter(tags=["definitions"])
A = m.ChannelAdapter.__table__


# ---------------------------------------------------------------------------------------------
# Bodies (field names are the Python arguments)


class StepIn(Body):
    name: str
    channel: str
    key: str | None = None
    position: int | None = None
    timing: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    template_type: str = "inline"
    template_content: Any = None
    template_module: str | None = None
    template_function: str | None = None
    channel_adapter_id: str | None = None
    active: bool = True


class StepChanges(Body):
    name: str | None = None
    position: int | None = None
    channel: str | None = None
    timing: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    template_type: str | None = None
    template_content: Any = None
    template_module: str | None = None
    template_function: str | None = None
    channel_adapter_id: str | None = None
    active: bool | None = None


class ConditionIn(Body):
    condition_type: str | None = None
    field_path: str | None = None
    operator: str = "eq"
    expected_value: Any = None
    hook_function: str | None = None
    http_hook_id: str | None = None
    config: dict[str, Any] | None = None


class ConditionChanges(Body):
    condition_type: str | None = None
    field_path: str | None = None
    operator: str | None = None
    expected_value: Any = None
    hook_function: str | None = None
    http_hook_id: str | None = None
    config: dict[str, Any] | None = None


class AdapterIn(Body):
    name: str
    channel: str
    provider: str
    credentials: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    is_default: bool | None = None
    active: bool = True
    tenant_key: str | None = None


class AdapterChanges(Body):
    name: str | None = None
    credentials: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    is_default: bool | None = None
    active: bool | None = None


class HookIn(Body):
    name: str
    key: str
    url: str
    method: str = "POST"
    auth_type: str = "none"
    auth_config: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    body_template: str | None = None
    response_path: str | None = None
    response_type: str = "json"
    timeout_ms: int = 5000
    retry_count: int = 2
    description: str | None = None
    active: bool = True


class HookChanges(Body):
    name: str | None = None
    url: str | None = None
    method: str | None = None
    auth_type: str | None = None
    auth_config: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    body_template: str | None = None
    response_path: str | None = None
    response_type: str | None = None
    timeout_ms: int | None = None
    retry_count: int | None = None
    description: str | None = None
    active: bool | None = None


class HookTest(Body):
    test_data: dict[str, Any] | None = None


# ---------------------------------------------------------------------------------------------
# Lookups: NotFound for another tenant's rows, a 422 naming the path parameter for a bad id


def step_of(request: Request, who: Principal, step_id: str) -> Step:
    found = who.owns(record_by_id(request, m.Step, Step, step_id, "step"))
    version(request, who, str(found.sequence_version_id))  # the version's tenant decides
    return found


def condition_of(request: Request, who: Principal, condition_id: str) -> Condition:
    found = who.owns(record_by_id(request, m.Condition, Condition, condition_id, "condition"))
    if found.transition_id is not None:  # a transition's condition (routes/flow.py)
        from dripdrop.web.routes.flow import transition_of

        transition_of(request, who, str(found.transition_id))
    else:
        step_of(request, who, str(found.step_id))
    return found


def adapter_of(request: Request, who: Principal, adapter_id: str) -> Any:
    return who.owns(dd_of(request).get_channel_adapter(as_uuid(adapter_id, "adapter_id")))


def hook_of(request: Request, who: Principal, hook_id: str) -> HttpHook:
    found = who.owns(dd_of(request).get_http_hook(as_uuid(hook_id, "hook_id")))
    sequence(request, who, str(found.sequence_id))
    return found


def check_adapters(request: Request, who: Principal, values: dict[str, Any]) -> None:
    """A tenant-bound key may pin its steps only to its own tenant's adapters: another tenant's
    adapter is reported as not existing (as a 404 would)."""
    if not who.bound:
        return
    wanted: list[tuple[str, Any]] = []
    if values.get("channel_adapter_id"):
        wanted.append(("channel_adapter_id", values["channel_adapter_id"]))
    rotation = (values.get("config") or {}).get("channel_adapter_rotation")
    if isinstance(rotation, list):
        wanted += [(f"config.channel_adapter_rotation.{i}", v) for i, v in enumerate(rotation)]
    errors: dict[str, list[str]] = {}
    for field, value in wanted:
        try:
            aid = as_uuid(value, field)
        except ValidationError:
            continue  # the Python API reports it with its own message
        found = rows(request, select(A.c.tenant_key).where(A.c.id == aid))
        if found and found[0].tenant_key != who.tenant_key:
            errors[field] = [f"channel adapter {aid} does not exist"]
    if errors:
        raise ValidationError(errors)


# ---------------------------------------------------------------------------------------------
# Steps


@router.get("/versions/{version_id}/steps")
def list_steps(version_id: str, request: Request, who: Principal = require("read")) -> Any:
    """The steps of a version in position order."""
    found = version(request, who, version_id)
    return {"items": encode(dd_of(request).list_steps(found.id)), "next_cursor": None}


@router.post("/versions/{version_id}/steps", status_code=201)
def create_step(
    version_id: str, body: StepIn, request: Request, who: Principal = require("write")
) -> Any:
    """Add a step (``key`` defaults to a slug of ``name``; ``position`` appends)."""
    found = version(request, who, version_id)
    values = body.model_dump()
    check_adapters(request, who, values)
    return encode(dd_of(request).create_step(found.id, **values))


@router.get("/steps/{step_id}")
def get_step(step_id: str, request: Request, who: Principal = require("read")) -> Any:
    return encode(step_of(request, who, step_id))


@router.patch("/steps/{step_id}")
def update_step(
    step_id: str, body: StepChanges, request: Request, who: Principal = require("write")
) -> Any:
    """Change the fields given; the whole step is re-validated."""
    found = step_of(request, who, step_id)
    changes = body.model_dump(exclude_unset=True)
    check_adapters(request, who, changes)
    return encode(dd_of(request).update_step(found.id, **changes))


@router.delete("/steps/{step_id}", status_code=204)
def delete_step(step_id: str, request: Request, who: Principal = require("write")) -> None:
    """Delete a step with its conditions and history (prefer deactivate)."""
    found = step_of(request, who, step_id)
    dd_of(request).delete_step(found.id)


@router.post("/steps/{step_id}/deactivate")
def deactivate_step(step_id: str, request: Request, who: Principal = require("write")) -> Any:
    """Skip this step from now on; its history is kept."""
    found = step_of(request, who, step_id)
    return encode(dd_of(request).deactivate_step(found.id))


# ---------------------------------------------------------------------------------------------
# Conditions


@router.get("/steps/{step_id}/conditions")
def list_conditions(step_id: str, request: Request, who: Principal = require("read")) -> Any:
    """The conditions of a step, oldest first."""
    found = step_of(request, who, step_id)
    return {"items": encode(dd_of(request).list_conditions(found.id)), "next_cursor": None}


@router.post("/steps/{step_id}/conditions", status_code=201)
def create_condition(
    step_id: str, body: ConditionIn, request: Request, who: Principal = require("write")
) -> Any:
    """Add a condition (given only ``http_hook_id`` or ``hook_function`` it is a hook one)."""
    found = step_of(request, who, step_id)
    return encode(dd_of(request).create_condition(found.id, **body.model_dump()))


@router.patch("/conditions/{condition_id}")
def update_condition(
    condition_id: str, body: ConditionChanges, request: Request, who: Principal = require("write")
) -> Any:
    found = condition_of(request, who, condition_id)
    changes = body.model_dump(exclude_unset=True)
    return encode(dd_of(request).update_condition(found.id, **changes))


@router.delete("/conditions/{condition_id}", status_code=204)
def delete_condition(
    condition_id: str, request: Request, who: Principal = require("write")
) -> None:
    found = condition_of(request, who, condition_id)
    dd_of(request).delete_condition(found.id)


# ---------------------------------------------------------------------------------------------
# Channel adapters (admin only: they hold credentials)


@router.get("/adapters")
def list_adapters(
    request: Request,
    who: Principal = require("admin"),
    channel: str | None = None,
    active: bool | None = None,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: str | None = None,
) -> dict[str, Any]:
    """Adapters by channel and name (a bound key sees its tenant's; others see every tenant's).
    Credentials are never answered: ``credentials_set`` names the fields that are set."""
    after = parse_cursor(cursor, 3)
    stmt = select(A).order_by(A.c.channel, A.c.name, A.c.id).limit(limit + 1)
    if who.bound:
        stmt = stmt.where(A.c.tenant_key == who.tenant_key)
    if channel is not None:
        stmt = stmt.where(A.c.channel == channel)
    if active is not None:
        stmt = stmt.where(A.c.active == active)
    if after:
        key = (after[0], after[1], as_uuid(after[2], "cursor"))
        stmt = stmt.where((A.c.channel, A.c.name, A.c.id) > key)
    rt = dd_of(request).runtime
    items = [adapter_record(rt, r) for r in rows(request, stmt)]
    return page(items, limit, lambda a: (a.channel, a.name, a.id))


@router.post("/adapters", status_code=201)
def create_adapter(body: AdapterIn, request: Request, who: Principal = require("admin")) -> Any:
    """Store an adapter; its credentials are checked against the provider and encrypted (a
    bound key creates it in its tenant)."""
    values = body.model_dump()
    values["tenant_key"] = who.tenant_for(values.get("tenant_key"))
    return encode(dd_of(request).create_channel_adapter(**values))


@router.get("/adapters/{adapter_id}")
def get_adapter(adapter_id: str, request: Request, who: Principal = require("admin")) -> Any:
    return encode(adapter_of(request, who, adapter_id))


@router.patch("/adapters/{adapter_id}")
def update_adapter(
    adapter_id: str, body: AdapterChanges, request: Request, who: Principal = require("admin")
) -> Any:
    """Change name, credentials (replaced whole), config, is_default or active."""
    found = adapter_of(request, who, adapter_id)
    changes = body.model_dump(exclude_unset=True)
    return encode(dd_of(request).update_channel_adapter(found.id, **changes))


@router.delete("/adapters/{adapter_id}", status_code=204)
def delete_adapter(adapter_id: str, request: Request, who: Principal = require("admin")) -> None:
    found = adapter_of(request, who, adapter_id)
    dd_of(request).delete_channel_adapter(found.id)


@router.post("/adapters/{adapter_id}/deactivate")
def deactivate_adapter(adapter_id: str, request: Request, who: Principal = require("admin")) -> Any:
    found = adapter_of(request, who, adapter_id)
    return encode(dd_of(request).deactivate_channel_adapter(found.id))


# ---------------------------------------------------------------------------------------------
# HTTP hooks (admin only: they hold auth settings)


@router.get("/sequences/{sequence_id}/http-hooks")
def list_http_hooks(sequence_id: str, request: Request, who: Principal = require("admin")) -> Any:
    """The HTTP hooks of a sequence, by key (``auth_config_set`` instead of ``auth_config``)."""
    found = sequence(request, who, sequence_id)
    return {"items": encode(dd_of(request).list_http_hooks(found.id)), "next_cursor": None}


@router.post("/sequences/{sequence_id}/http-hooks", status_code=201)
def create_http_hook(
    sequence_id: str, body: HookIn, request: Request, who: Principal = require("admin")
) -> Any:
    found = sequence(request, who, sequence_id)
    return encode(dd_of(request).create_http_hook(found.id, **body.model_dump()))


@router.get("/http-hooks/{hook_id}")
def get_http_hook(hook_id: str, request: Request, who: Principal = require("admin")) -> Any:
    return encode(hook_of(request, who, hook_id))


@router.patch("/http-hooks/{hook_id}")
def update_http_hook(
    hook_id: str, body: HookChanges, request: Request, who: Principal = require("admin")
) -> Any:
    """Change the fields given; ``auth_config`` given is replaced whole."""
    found = hook_of(request, who, hook_id)
    changes = body.model_dump(exclude_unset=True)
    return encode(dd_of(request).update_http_hook(found.id, **changes))


@router.delete("/http-hooks/{hook_id}", status_code=204)
def delete_http_hook(hook_id: str, request: Request, who: Principal = require("admin")) -> None:
    """Delete a hook (conditions using it are deleted too)."""
    found = hook_of(request, who, hook_id)
    dd_of(request).delete_http_hook(found.id)


@router.post("/http-hooks/{hook_id}/test")
def test_http_hook(
    hook_id: str,
    request: Request,
    body: HookTest | None = None,
    who: Principal = require("admin"),
) -> Any:
    """Call the hook for real with ``test_data`` (through the guarded HTTP client); the outcome
    (``ok``, ``value``, ``status``, ``error``, ``latency_ms``, ``missing``) is stored on it."""
    found = hook_of(request, who, hook_id)
    test_data = body.test_data if body else None
    return encode(dd_of(request).test_http_hook(found.id, test_data=test_data))
