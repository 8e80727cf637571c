"""What a template must pass before the builder returns it, and the inputs it is asked with.

The checks are those of ``dripdrop templates check`` (dripdrop.templates.check): it compiles in
its engine, reads only the available variables (the engine's own parser, not a regex), renders
with sample values through the bounded path used when sending (an MJML body compiles), a
marketing email links to ``{{ unsubscribe_url }}``, an SMS fits in ``max_sms_segments``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dripdrop.definitions.inputs import check_int, check_json, check_text, describe, gather
from dripdrop.errors import ValidationError
from dripdrop.records import SmsSegments
from dripdrop.templates.check import (
    BUILTIN_NAMES,
    DEFAULT_MAX_SMS_SEGMENTS,
    builtin_context,
    check_config,
    config_variables,
    engine_choices,
    normalize_engine,
    sample_data,
    sms_segments,
)

#: The fields the model writes, per channel.
CHAT_CHANNELS = ("slack", "telegram", "discord", "msteams")
CHANNEL_FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("subject", "preheader", "body", "text"),
    "sms": ("body",),
    **{name: ("text",) for name in CHAT_CHANNELS},
}
CATEGORIES = ("marketing", "transactional")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_VARIABLES = 200
MAX_REPAIRS = 10


@dataclass(frozen=True)
class Spec:
    """What was asked for: the checks every answer must pass."""

    channel: str
    engine: str
    variables: frozenset[str]
    category: str | None = None
    max_sms_segments: int = DEFAULT_MAX_SMS_SEGMENTS
    examples: dict[str, Any] | None = None  # example values given by the caller


@dataclass(frozen=True)
class Verdict:
    problems: list[str]
    sms: SmsSegments | None
    variables: tuple[str, ...]


def validate_fields(fields: Mapping[str, Any], spec: Spec) -> Verdict:
    """The problems of a template's fields (messages "field: what is wrong"), its SMS segments
    and the variables it reads."""
    problems: list[str] = []
    for name in CHANNEL_FIELDS[spec.channel]:
        value = fields.get(name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{name}: must not be empty")
    config = {k: v for k, v in fields.items() if isinstance(v, str)}
    data = {**sample_data(spec.variables), **(spec.examples or {})}
    context = {**data, **builtin_context(), "data": data}
    found, rendered = check_config(
        config,
        channel=spec.channel,
        engine=spec.engine,
        context=context,
        known_names=spec.variables,
        marketing=spec.category == "marketing",
        max_sms_segments=spec.max_sms_segments,
    )
    for field, kind, message, _severity in found:
        if kind == "render" and spec.examples is None:
            # Invented values ("Sample plan" where a number is meant) may break a sound
            # template: like create_step, leave such errors to real data.
            continue
        problems.append(f"{field.removeprefix('config.')}: {message}")
    sms = None
    if spec.channel == "sms" and rendered is not None and isinstance(rendered.get("body"), str):
        sms = sms_segments(rendered["body"])
    names, _ = config_variables(config, spec.engine)
    used = sorted(set().union(*names.values()) if names else set())
    return Verdict(problems, sms, tuple(used))


def check_examples(value: Any, field: str = "available_variables") -> dict[str, Any] | None:
    """Example values when ``available_variables`` is a dict (name → example), else None."""
    if not isinstance(value, Mapping):
        return None
    check_json(value, field)
    check_variables(list(value), field)
    return dict(value)


def check_variables(value: Any, field: str = "available_variables") -> frozenset[str]:
    """Variable names (``user.name`` counts as ``user``): a list of identifiers, or a dict of
    name → example value."""
    if value is None:
        return frozenset()
    if isinstance(value, Mapping):
        value = list(value)
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise ValidationError.single(
            field, f"must be a list of variable names, not {describe(value)}"
        )
    if len(value) > MAX_VARIABLES:
        raise ValidationError.single(field, f"at most {MAX_VARIABLES} variables")
    names = set()
    for item in value:
        root = item.split(".", 1)[0] if isinstance(item, str) else item
        if not isinstance(root, str) or not _VARIABLE.fullmatch(root) or len(root) > 100:
            raise ValidationError.single(
                field, f"{describe(item)} is not a variable name (letters, digits, _)"
            )
        names.add(root)
    return frozenset(names)


def make_spec(
    channel: Any,
    engine: Any,
    variables: Any,
    category: Any,
    max_sms_segments: Any,
) -> Spec:
    """A Spec from caller input; ValidationError naming each bad field."""
    errors: dict[str, list[str]] = {}
    if not isinstance(channel, str) or channel not in CHANNEL_FIELDS:
        errors["channel"] = [f"must be one of {', '.join(CHANNEL_FIELDS)}, not {describe(channel)}"]
    name = normalize_engine(engine)
    if name is None:
        errors["engine"] = [f"must be one of {engine_choices()}, not {describe(engine)}"]
    elif name == "mjml" and channel != "email":
        errors["engine"] = ["mjml is for email bodies; choose liquid, mustache or jinja"]
    names = gather(errors, check_variables, variables, "available_variables")
    examples = None
    if names is not None:  # the names are fine: then the example values
        examples = gather(errors, check_examples, variables, "available_variables")
    if category is not None and category not in CATEGORIES:
        errors["category"] = [
            f"must be one of {', '.join(CATEGORIES)} or None, not {describe(category)}"
        ]
    gather(
        errors,
        lambda v, f: check_int(v, f, minimum=1, maximum=20),
        max_sms_segments,
        "max_sms_segments",
    )
    if errors:
        raise ValidationError(errors)
    return Spec(channel, name, names or frozenset(), category, max_sms_segments, examples)  # type: ignore[arg-type]


def check_prompt_text(
    value: Any, field: str, *, optional: bool = False, limit: int = 5000
) -> str | None:
    """Free text sent to the model (description, instruction, tone, language)."""
    return check_text(value, field, max_length=limit, optional=optional, blank=False)


def check_repairs(value: Any) -> int:
    return check_int(value, "max_repairs", minimum=0, maximum=MAX_REPAIRS)  # type: ignore[return-value]


def template_fields(template: Any) -> tuple[dict[str, str], str | None, str | None]:
    """(fields, channel, engine) of a template to improve or translate: a GeneratedTemplate, a
    Step record (``step.config``) or a mapping of fields (a step config)."""
    channel = getattr(template, "channel", None)
    if hasattr(template, "fields") and hasattr(template, "engine"):  # GeneratedTemplate
        return dict(template.fields), channel, template.engine
    source = getattr(template, "config", template)
    if not isinstance(source, Mapping):
        raise ValidationError.single(
            "template",
            f"must be a generated template, a step or a dict of fields, not {describe(template)}",
        )
    fields = {k: v for k, v in source.items() if k in ("subject", "preheader", "body", "text")}
    if not fields or not all(isinstance(v, str) for v in fields.values()):
        raise ValidationError.single(
            "template", "needs text fields: subject, preheader, body or text"
        )
    engine = source.get("template_engine")
    return fields, channel, engine if isinstance(engine, str) else None


def used_variables(fields: Mapping[str, str], engine: str) -> Iterable[str]:
    """Names the fields read (the built-ins left out): what an improved template may keep."""
    names, _ = config_variables(dict(fields), engine)
    return set().union(*names.values()) - BUILTIN_NAMES if names else set()
