"""Adapter forms generated from the provider declarations (channels/registry.py): one input
per declared credential and config field, typed from the pydantic model.

Credentials are write-only: a stored one is shown as "••••" with an empty "replace" input, never
its value (not even in a hidden field), and an edit that leaves it empty keeps it.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from typing import Any

from dripdrop.channels.base import Fields, ProviderSpec

MASK = "••••"


@dataclass(frozen=True)
class FormField:
    group: str  # "credentials" or "config"
    name: str  # the key stored (an alias when the model declares one: "from")
    kind: str  # "text", "number", "checkbox", "json"
    required: bool
    secret: bool
    default: Any = None
    help: str = ""

    @property
    def input_name(self) -> str:
        return f"{self.group}.{self.name}"


def _kind(annotation: Any) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _kind(args[0])
    if origin is typing.Annotated:
        return _kind(args[0])
    if annotation is bool:
        return "checkbox"
    if annotation in (int, float):
        return "number"
    if annotation is str:
        return "text"
    if origin in (dict, list) or annotation in (dict, list):
        return "json"
    return "text"


def _fields(model: type[Fields], group: str, secret: bool) -> list[FormField]:
    out = []
    for name, info in model.model_fields.items():
        default = info.default if info.default is not None and not secret else None
        out.append(
            FormField(
                group=group,
                name=info.alias or name,
                kind=_kind(info.annotation),
                required=info.is_required(),
                secret=secret,
                default=default if isinstance(default, str | int | float | bool) else None,
                help=info.description or "",
            )
        )
    return out


def form_fields(spec: ProviderSpec) -> list[FormField]:
    """Every credential (write-only) and config field of the provider."""
    return _fields(spec.credentials, "credentials", True) + _fields(spec.config, "config", False)


def _value(field: FormField, raw: str, errors: dict[str, list[str]]) -> Any:
    if field.kind == "checkbox":
        return raw in ("on", "true", "1")
    if field.kind == "number":
        try:
            return int(raw)
        except ValueError:
            try:
                return float(raw)
            except ValueError:
                errors.setdefault(field.input_name, []).append("must be a number")
                return None
    if field.kind == "json":
        try:
            return json.loads(raw)
        except ValueError:
            errors.setdefault(field.input_name, []).append("is not valid JSON")
            return None
    return raw


def read(
    spec: ProviderSpec, form: Any, current_credentials: dict[str, Any] | None = None
) -> tuple[dict[str, Any] | None, dict[str, Any], dict[str, list[str]]]:
    """(credentials, config, errors) from a posted form. ``credentials`` is None on an edit
    that replaced none of them (the stored ones stay)."""
    errors: dict[str, list[str]] = {}
    creds = dict(current_credentials or {})
    replaced = current_credentials is None
    config: dict[str, Any] = {}
    for field in form_fields(spec):
        raw = form.get(field.input_name)
        if field.kind != "checkbox" and not raw.strip():
            continue
        value = _value(field, raw if field.kind == "json" else raw.strip(), errors)
        if field.group == "credentials":
            creds[field.name] = value
            replaced = True
        elif field.kind != "checkbox" or value or field.default:
            config[field.name] = value
    return (creds if replaced else None), config, errors
