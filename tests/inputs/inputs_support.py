"""Shared by the input tests: a small world of definitions, every public entry point with valid
arguments, and the malformed values fed into them one argument at a time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dripdrop.errors import DripDropError

NAN, INF = float("nan"), float("inf")


def deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def deep_dict(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


#: One of each kind of malformed value of the issue, plus plain wrong types.
BAD_VALUES: dict[str, Any] = {
    "none": None,
    "true": True,
    "zero": 0,
    "negative": -1,
    "float": 1.5,
    "int_2_70": 2**70,
    "int_10_5000": 10**5000,  # str() of it raises ValueError
    "nan": NAN,
    "inf": INF,
    "empty": "",
    "blank": "   ",
    "nul": "a\x00b",
    "surrogate": "x\ud800y",
    "huge_text": "a" * 1_000_000,
    "bytes": b"abc",
    "list": ["a"],
    "empty_dict": {},
    "dict_nan": {"a": NAN},
    "dict_inf": {"a": [1, -INF]},
    "dict_nul_key": {"a\x00": 1},
    "dict_nul_value": {"a": "b\x00"},
    "dict_surrogate": {"a": {"b": "\udfff"}},
    "dict_huge_int": {"a": 2**70},
    "dict_tuple_key": {(1, 2): 1},
    "dict_object": {"a": object()},
    "deep_list": deep_list(10_000),
    "deep_dict": deep_dict(10_000),
    # Template text that made the engines raise their own errors (RecursionError, ValueError,
    # TemplateNotFoundError) instead of a syntax error.
    "template_parens": "{{ " + "(" * 3_000 + "a" + ")" * 3_000 + " }}",
    "template_sections": "{{#a}}" * 3_000 + "{{/a}}" * 3_000,
    "template_ifs": "{% if a %}" * 3_000 + "{% endif %}" * 3_000,
    "template_include": '{% include "other" %}',
    "template_literal": "{{ " + "9" * 5_000 + " }}",
    "object": object(),
    "set": {1, 2},
    "datetime": datetime(2024, 1, 1, tzinfo=UTC),
    "uuid": uuid.UUID(int=7),
}


@dataclass
class World:
    """Definitions and an enrollment the entry points are called with."""

    seq: Any
    version: Any
    step: Any
    condition: Any
    adapter: Any
    hook: Any
    enrollment: Any
    execution: Any
    api_key: Any = None
    transition: Any = None  # flow control (docs/flow.md)


def make_world(dd: Any) -> World:
    seq = dd.create_sequence(name="World", key="world")
    version = dd.create_sequence_version(seq.id, active=True)
    adapter = dd.create_channel_adapter(name="mem", channel="email", provider="memory")
    step = dd.create_step(
        version.id, name="Hello", channel="email", config={"subject": "Hi", "body": "b"}
    )
    condition = dd.create_condition(step.id, field_path="plan", operator="eq", expected_value="x")
    hook = dd.create_http_hook(
        seq.id, name="Score", key="score", url="https://example.com/score", response_type="json"
    )
    enrollment = dd.enroll("world", {"type": "User", "id": 1}, data={"email": "a@example.com"})
    execution = dd.list_executions(enrollment.id)[0]
    api_key = dd.create_api_key("world", scopes=["read"])
    transition = dd.create_transition(version.id, from_step_id=step.id, to_step_id=None)
    return World(
        seq, version, step, condition, adapter, hook, enrollment, execution, api_key, transition
    )


# (method name, positional arguments, keyword arguments)
Call = tuple[str, tuple[Any, ...], dict[str, Any]]
Path = tuple[Any, ...]


def entry_points(w: World) -> dict[str, Call]:
    """Valid calls of every public operation (some in several shapes); the tests spoil one
    argument, or one value nested in an argument, at a time. Baselines that would change the
    world (deletes, deactivations) are harmless: their only argument is always the one spoiled."""
    sub = {"type": "User", "id": 1}
    adapter_id = str(w.adapter.id)
    return {
        "create_sequence": (
            "create_sequence",
            (),
            dict(
                name="S",
                key="s2",
                description="d",
                hook_module=None,
                active=True,
                metadata={"a": 1, "b": [1, "x"]},
                tenant_key=None,
            ),
        ),
        "get_sequence": ("get_sequence", ("world",), {"tenant_key": None}),
        "list_sequences": ("list_sequences", (), {"tenant_key": None, "active": True}),
        "update_sequence": (
            "update_sequence",
            (w.seq.id,),
            dict(name="World", description="d", active=True, metadata={"a": 1}),
        ),
        "delete_sequence": ("delete_sequence", (w.seq.id,), {}),
        "create_sequence_version": (
            "create_sequence_version",
            (w.seq.id,),
            dict(
                version=99,
                active=False,
                name="v",
                config={
                    "exit_events": ["unsubscribed"],
                    "channel_rotation": {"email": [{"adapter_id": adapter_id, "weight": 70}]},
                },
            ),
        ),
        "activate_version": ("activate_version", (w.version.id,), {"force": False}),
        "check_version": ("check_version", (w.version.id,), {}),
        "check_templates[sequence]": (
            "check_templates",
            ("world",),
            {"data": {"name": "Ada", "email": "ada@example.com"}, "tenant_key": None},
        ),
        "deactivate_version": ("deactivate_version", (w.version.id,), {}),
        "update_sequence_version": (
            "update_sequence_version",
            (w.version.id,),
            dict(name="v1", config={"exit_events": ["unsubscribed"]}),
        ),
        "list_versions": ("list_versions", (w.seq.id,), {}),
        "get_active_version": ("get_active_version", (w.seq.id,), {}),
        "create_step": (
            "create_step",
            (w.version.id,),
            dict(
                name="Second",
                channel="email",
                key="second",
                position=5,
                timing={"type": "delay", "delay_amount": 2, "delay_unit": "days"},
                config={
                    "subject": "Hi {{ name }}",
                    "body": "B",
                    "max_retries": 2,
                    "on_failure": "halt",
                    "template_engine": "liquid",
                    "channel_adapter_rotation": [adapter_id],
                },
                template_type="inline",
                template_content=None,
                template_module=None,
                template_function=None,
                channel_adapter_id=w.adapter.id,
                active=True,
            ),
        ),
        "create_step[jinja2]": (
            "create_step",
            (w.version.id,),
            dict(
                name="Jinja",
                channel="email",
                config={"subject": "Hi {{ name }}", "body": "B", "template_engine": "jinja2"},
            ),
        ),
        "create_step[mustache]": (
            "create_step",
            (w.version.id,),
            dict(
                name="Mustache",
                channel="email",
                config={"subject": "Hi {{name}}", "body": "B", "template_engine": "mustache"},
            ),
        ),
        "create_step[cron]": (
            "create_step",
            (w.version.id,),
            dict(
                name="Weekly",
                channel="email",
                timing={
                    "type": "cron",
                    "cron_expression": "0 9 * * MON",
                    "timezone": "America/New_York",
                },
                config={"subject": "S", "body": "B"},
            ),
        ),
        "create_step[human]": (
            "create_step",
            (w.version.id,),
            dict(
                name="Later",
                channel="email",
                timing={"human_expression": "in 3 days"},
                config={"subject": "S", "body": "B"},
            ),
        ),
        "create_step[event]": (
            "create_step",
            (w.version.id,),
            dict(
                name="On paid",
                channel="email",
                timing={
                    "type": "event",
                    "trigger_event": "paid",
                    "trigger_data": {"plan": "pro"},
                    "timeout_amount": 3,
                    "timeout_unit": "days",
                },
                config={"subject": "S", "body": "B"},
                template_type="external",
                template_content={"url": "https://example.com/t"},
            ),
        ),
        "get_step": ("get_step", (w.step.id,), {}),
        "list_steps": ("list_steps", (w.version.id,), {}),
        "update_step": (
            "update_step",
            (w.step.id,),
            dict(
                name="Hello",
                position=1,
                timing={"human_expression": "every monday at 9am"},
                config={"subject": "Hi", "body": "b"},
                template_module=None,
                channel_adapter_id=None,
                active=True,
            ),
        ),
        "deactivate_step": ("deactivate_step", (w.step.id,), {}),
        "delete_step": ("delete_step", (w.step.id,), {}),
        "create_condition": (
            "create_condition",
            (w.step.id,),
            dict(
                condition_type="enrollment_data",
                field_path="$.plan",
                operator="in",
                expected_value=["pro", 2],
                config=None,
            ),
        ),
        "create_condition[time_window]": (
            "create_condition",
            (w.step.id,),
            dict(
                condition_type="time_window",
                config={
                    "timezone": "America/New_York",
                    "days": ["mon", "friday"],
                    "start": "09:00",
                    "end": "17:00",
                },
            ),
        ),
        "create_condition[event]": (
            "create_condition",
            (w.step.id,),
            dict(
                condition_type="event",
                operator="gte",
                expected_value="1",
                config={"event_key": "paid"},
            ),
        ),
        "create_condition[hook]": (
            "create_condition",
            (w.step.id,),
            dict(http_hook_id=w.hook.id, operator="gt", expected_value=50),
        ),
        "update_condition": (
            "update_condition",
            (w.condition.id,),
            dict(field_path="plan", operator="neq", expected_value="free", config={}),
        ),
        "delete_condition": ("delete_condition", (w.condition.id,), {}),
        "list_conditions": ("list_conditions", (w.step.id,), {}),
        # flow control
        "create_transition": (
            "create_transition",
            (w.version.id,),
            dict(from_step_id=w.step.id, to_step_id=None, condition_mode="all", priority=3),
        ),
        "get_transition": ("get_transition", (w.transition.id,), {}),
        "list_transitions": ("list_transitions", (w.version.id,), {}),
        "update_transition": (
            "update_transition",
            (w.transition.id,),
            dict(condition_mode="any", priority=4),
        ),
        "delete_transition": ("delete_transition", (w.transition.id,), {}),
        "split_counts": ("split_counts", (w.step.id,), {}),
        "create_condition[transition]": (
            "create_condition",
            (),
            dict(
                transition_id=w.transition.id,
                condition_type="throttle",
                config={"max_sends": 2, "window_amount": 1, "window_unit": "days"},
            ),
        ),
        "create_channel_adapter": (
            "create_channel_adapter",
            (),
            dict(
                name="mem2",
                channel="email",
                provider="memory",
                credentials=None,
                config={},
                is_default=False,
                active=True,
                tenant_key=None,
            ),
        ),
        "create_channel_adapter[mailgun]": (
            "create_channel_adapter",
            (),
            dict(
                name="Mailgun",
                channel="email",
                provider="mailgun",
                credentials={"api_key": "key-1"},
                config={"domain": "mg.example.com"},
            ),
        ),
        "get_channel_adapter": ("get_channel_adapter", (w.adapter.id,), {}),
        "list_channel_adapters": ("list_channel_adapters", ("email",), {"tenant_key": None}),
        "get_default_adapter": ("get_default_adapter", ("email",), {"tenant_key": None}),
        "update_channel_adapter": (
            "update_channel_adapter",
            (w.adapter.id,),
            dict(name="mem", config={}, credentials={}, is_default=True, active=True),
        ),
        "deactivate_channel_adapter": ("deactivate_channel_adapter", (w.adapter.id,), {}),
        "delete_channel_adapter": ("delete_channel_adapter", (w.adapter.id,), {}),
        "create_http_hook": (
            "create_http_hook",
            (w.seq.id,),
            dict(
                name="Other",
                key="other",
                url="https://example.com/x/{{ subscriber_id }}",
                method="POST",
                auth_type="basic",
                auth_config={"username": "u", "password": "p"},
                headers={"X-A": "b"},
                body_template='{"id": "{{ subscriber_id }}"}',
                response_path="$.score",
                response_type="number",
                timeout_ms=1000,
                retry_count=1,
                description="d",
                active=True,
            ),
        ),
        "get_http_hook": ("get_http_hook", (w.hook.id,), {}),
        "list_http_hooks": ("list_http_hooks", (w.seq.id,), {}),
        "update_http_hook": (
            "update_http_hook",
            (w.hook.id,),
            dict(
                name="Score",
                url="https://example.com/s",
                method="GET",
                auth_type="bearer",
                auth_config={"token": "t"},
                headers={"X-B": "c"},
                timeout_ms=2000,
                retry_count=0,
                description="x",
                active=True,
            ),
        ),
        "delete_http_hook": ("delete_http_hook", (w.hook.id,), {}),
        "enroll": (
            "enroll",
            ("world", {"type": "User", "id": 2}),
            dict(
                data={"a": 1, "tz": "UTC", "tags": ["x"]},
                metadata={"m": 1},
                on_conflict="ignore",
                tenant_key=None,
            ),
        ),
        "unenroll": ("unenroll", ("world", "User", 9), {"tenant_key": None}),
        "pause_enrollment": ("pause_enrollment", (w.enrollment.id,), {}),
        "resume_enrollment": ("resume_enrollment", (w.enrollment.id,), {}),
        "get_enrollment": ("get_enrollment", ("world", "User", 1), {"tenant_key": None}),
        "get_enrollment_by_id": ("get_enrollment_by_id", (w.enrollment.id,), {}),
        "list_active_enrollments": (
            "list_active_enrollments",
            ("world",),
            dict(tenant_key=None, limit=10, offset=0),
        ),
        "list_executions": ("list_executions", (w.enrollment.id,), {}),
        "get_execution": ("get_execution", (w.execution.id,), {}),
        "replay": ("replay", (w.execution.id,), {}),
        # An unknown execution: a call that gets through must not cancel the world's.
        "cancel_execution": (
            "cancel_execution",
            ("00000000-0000-7000-8000-000000000001",),
            {"reason": "stop"},
        ),
        "track_event": (
            "track_event",
            (w.enrollment.id, "clicked"),
            dict(event_data={"a": 1, "b": {"c": [1.5]}}, event_type="custom", tenant_key=None),
        ),
        "track": (
            "track",
            (sub, "clicked"),
            dict(event_data={"a": 1}, event_type="custom", tenant_key=None),
        ),
        "create_api_key": ("create_api_key", ("ci",), dict(scopes=["read"], tenant_key=None)),
        "list_api_keys": ("list_api_keys", (), dict(include_revoked=False)),
        "revoke_api_key": ("revoke_api_key", (w.api_key.id,), {}),
        # provider events (dripdrop/inbound/record.py): the world's adapter is a memory one
        "record_delivery_events": (
            "record_delivery_events",
            ("memory", adapter_id),
            dict(
                events=[
                    {
                        "type": "delivered",
                        "provider_message_id": "m-1",
                        "provider_event_id": "e-1",
                        "occurred_at": "2026-11-30T09:00:00Z",
                        "recipient": "ada@example.com",
                        "data": {"a": 1},
                    }
                ]
            ),
        ),
        "list_delivery_events": ("list_delivery_events", (w.execution.id,), {}),
        # suppressions (definitions/suppressions.py) and sequence categories
        "suppress": (
            "suppress",
            ("email", "Ada@Example.com"),
            dict(
                reason="manual",
                tenant_key=None,
                category="marketing",
                source="import",
                metadata={"a": 1},
            ),
        ),
        "unsuppress": ("unsuppress", ("email", "nobody@example.com"), dict(tenant_key=None)),
        "unsuppress[category]": (
            "unsuppress",
            ("sms", "+14155552671"),
            dict(tenant_key="t1", category="marketing"),
        ),
        "is_suppressed": (
            "is_suppressed",
            ("email", "ada@example.com"),
            dict(tenant_key=None, category="marketing"),
        ),
        "list_suppressions": (
            "list_suppressions",
            (),
            dict(
                channel="email",
                tenant_key=None,
                reason="manual",
                recipient="ada@example.com",
                all_tenants=False,
                limit=10,
            ),
        ),
        "create_sequence[category]": (
            "create_sequence",
            (),
            dict(name="C", key="c2", category="marketing"),
        ),
        "update_sequence[category]": ("update_sequence", (w.seq.id,), dict(category="product")),
        # analytics (engine/analytics.py)
        "sequence_analytics": (
            "sequence_analytics",
            ("world",),
            dict(
                version_id=w.version.id,
                since=datetime(2029, 12, 1, tzinfo=UTC),
                until=datetime(2030, 1, 1, tzinfo=UTC),
                tenant_key=None,
            ),
        ),
        "sequence_analytics[by id]": ("sequence_analytics", (w.seq.id,), {}),
        "adapter_health": (
            "adapter_health",
            (w.adapter.id,),
            dict(
                since=datetime(2029, 12, 1, tzinfo=UTC),
                until=datetime(2030, 1, 1, tzinfo=UTC),
                tenant_key=None,
                every_tenant=False,
            ),
        ),
        "rebuild_analytics[sequence rollups]": ("rebuild_analytics", (), {}),
    }


def _paths(value: Any, prefix: Path) -> list[Path]:
    found = [prefix]
    if isinstance(value, dict):
        for key, sub in value.items():
            found += _paths(sub, (*prefix, key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            found += _paths(sub, (*prefix, index))
    return found


def slots(call: Call) -> list[Path]:
    """Where a value can be spoiled: each argument (by position or name) and each value nested
    in one, as a path (``("timing", "delay_amount")``, ``(1, "id")``)."""
    _, args, kwargs = call
    found: list[Path] = []
    for index, arg in enumerate(args):
        found += _paths(arg, (index,))
    for name, arg in kwargs.items():
        found += _paths(arg, (name,))
    return found


def _replace(container: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(container, dict):
        return {**container, head: _replace(container.get(head), rest, value)}
    items = list(container)
    items[head] = _replace(items[head], rest, value)
    return tuple(items) if isinstance(container, tuple) else items


def spoil(call: Call, path: Path, value: Any) -> Call:
    """The call with the value at ``path`` replaced (containers along the path are copied)."""
    method, args, kwargs = call
    if isinstance(path[0], int):
        return method, _replace(args, path, value), kwargs
    return method, args, _replace(kwargs, path, value)


def outcome(dd: Any, call: Call) -> BaseException | None:
    """None when the call succeeded or raised a DripDropError; the stray exception otherwise."""
    method, args, kwargs = call
    try:
        getattr(dd, method)(*args, **kwargs)
    except DripDropError:
        return None
    except Exception as exc:
        return exc
    return None


def show(exc: BaseException) -> str:
    """A one-line account of a stray exception (str() itself may fail: huge ints in params)."""
    try:
        text = str(exc)
    except Exception:
        text = "<unprintable>"
    return f"{type(exc).__name__}: {text[:160]}".replace("\n", " ")
