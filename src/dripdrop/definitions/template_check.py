"""``check_templates``: render every step of the active versions with sample data and report what
would go wrong when sending — before a subscriber meets it (``dripdrop templates check`` in CI).

Per active step of an inline template: syntax, variables the data does not provide (only when
real data is given: generated data holds every name the templates read), the render through the
same bounded path as sending (MJML compiled too), the recipient (the step's ``to`` or the data's
``email``/``phone``/``telegram_chat_id``), SMS length and, for sequences whose ``category`` is
``marketing``, the ``{{ unsubscribe_url }}`` link. The static checks live in
``dripdrop.templates.check``; this module loads the definitions and adds the recipient.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, select

from dripdrop.db import models as m
from dripdrop.definitions.common import raise_if
from dripdrop.definitions.inputs import (
    check_identifier,
    check_int,
    check_json,
    check_tenant,
    gather,
)
from dripdrop.definitions.sequences import get_sequence_row
from dripdrop.engine.defs import StepDef, VersionDef, load_version
from dripdrop.engine.recipients import RECIPIENT_FIELDS, resolve_recipient
from dripdrop.errors import PermanentError
from dripdrop.records import TemplateProblem
from dripdrop.runtime import Runtime
from dripdrop.templates.check import (
    BUILTIN_NAMES,
    DEFAULT_MAX_SMS_SEGMENTS,
    builtin_context,
    check_config,
    config_variables,
    normalize_engine,
    sample_data,
    sample_value,
)

S = m.Sequence.__table__
V = m.SequenceVersion.__table__


def check_templates(
    rt: Runtime,
    conn: Connection,
    sequence_key: str | None = None,
    data: dict[str, Any] | None = None,
    *,
    tenant_key: str | None = None,
    max_sms_segments: int = DEFAULT_MAX_SMS_SEGMENTS,
) -> list[TemplateProblem]:
    """The problems of every active step of every active version (or of ``sequence_key``'s,
    looked up in ``tenant_key``; without a key, ``tenant_key=None`` checks every tenant). ``data``
    is the enrollment data to render with; without it, sample data is made from the names the
    templates read. An empty list means every step rendered cleanly."""
    errors: dict[str, list[str]] = {}
    gather(errors, lambda v, f: check_identifier(v, f, optional=True), sequence_key, "sequence_key")
    gather(errors, lambda v, f: check_json(v, f, optional=True), data, "data")
    gather(errors, check_tenant, tenant_key, "tenant_key")
    gather(
        errors,
        lambda v, f: check_int(v, f, minimum=1, maximum=20),
        max_sms_segments,
        "max_sms_segments",
    )
    raise_if(errors)
    problems: list[TemplateProblem] = []
    for seq, version_id, version_number in _versions(conn, sequence_key, tenant_key):
        if version_id is None:
            problems.append(
                TemplateProblem(
                    sequence_key=seq.key,
                    version=None,
                    step_key=None,
                    channel=None,
                    field="sequence",
                    kind="no_active_version",
                    message="has no active version: nothing to check",
                    severity="warning",
                    tenant_key=seq.tenant_key,
                )
            )
            continue
        version = load_version(conn, version_id)
        marketing = seq._mapping.get("category") == "marketing"  # a column added by issue 19
        problems.extend(
            _version_problems(version, version_number, data, marketing, max_sms_segments)
        )
    return problems


def _versions(
    conn: Connection, sequence_key: str | None, tenant_key: str | None
) -> list[tuple[Any, uuid.UUID | None, int | None]]:
    """(sequence row, active version id, its number) to check, by sequence key."""
    if sequence_key is not None:
        seqs = [get_sequence_row(conn, sequence_key, tenant_key)]
    else:
        stmt = select(S).order_by(S.c.key, S.c.tenant_key)
        if tenant_key is not None:
            stmt = stmt.where(S.c.tenant_key == tenant_key)
        seqs = list(conn.execute(stmt))
    if not seqs:
        return []
    active = {
        r.sequence_id: (r.id, r.version)
        for r in conn.execute(
            select(V.c.id, V.c.sequence_id, V.c.version).where(
                V.c.active, V.c.sequence_id.in_([s.id for s in seqs])
            )
        )
    }
    found = []
    for seq in seqs:
        version_id, number = active.get(seq.id, (None, None))
        if version_id is None and sequence_key is None:
            continue  # a draft among many: only a sequence asked for by key is reported
        found.append((seq, version_id, number))
    return found


def _version_problems(
    version: VersionDef,
    number: int | None,
    data: dict[str, Any] | None,
    marketing: bool,
    max_sms_segments: int,
) -> list[TemplateProblem]:
    steps = [s for s in version.steps if s.active]
    hooks = set(version.http_hooks)
    if data is None:
        sample = _generated_data(steps) | {k: sample_value(k) for k in hooks}
        known = None
    else:
        sample = {**{k: sample_value(k) for k in hooks}, **data}
        known = frozenset(data) | hooks
    # Names a hook module may answer cannot be known before it runs: warn, do not fail.
    severity = "warning" if version.hook_module else "error"
    problems = []
    for step in steps:

        def problem(field: str, kind: str, message: str, level: str, step: StepDef = step) -> None:
            problems.append(
                TemplateProblem(
                    sequence_key=version.sequence_key,
                    version=number,
                    step_key=step.key,
                    channel=step.channel,
                    field=field,
                    kind=kind,
                    message=message,
                    severity=level,
                    tenant_key=version.tenant_key,
                )
            )

        if step.template_type != "inline":
            problem(
                "template_type",
                "not_checked",
                f"a {step.template_type} template is produced when sending: not checked here",
                "warning",
            )
            continue
        context = {
            **sample,
            **builtin_context(version.sequence_key, step.key),
            "data": data if data is not None else sample,
        }
        found, rendered = check_config(
            step.message_config,
            channel=step.channel,
            engine=step.config.get("template_engine", "liquid"),
            context=context,
            known_names=known,
            unknown_severity=severity,
            marketing=marketing,
            max_sms_segments=max_sms_segments,
        )
        for field, kind, message, level in found:
            problem(field, kind, message, level)
        if rendered is not None:
            try:
                resolve_recipient(step.channel, dict(rendered), sample)
            except PermanentError as exc:
                field = RECIPIENT_FIELDS.get(step.channel, ("to", None))[0]
                problem(f"config.{field}", "recipient", str(exc), "error")
    return problems


def _generated_data(steps: list[StepDef]) -> dict[str, Any]:
    """Sample enrollment data: every name the steps' templates read, and the recipient field of
    each channel that defaults to one (``email``, ``phone``, ``telegram_chat_id``)."""
    names: set[str] = set()
    for step in steps:
        engine = normalize_engine(step.config.get("template_engine", "liquid"))
        if step.template_type != "inline" or engine is None:
            continue
        variables, _syntax = config_variables(step.message_config, engine)
        for found in variables.values():
            names |= found
        default_field = RECIPIENT_FIELDS.get(step.channel, ("to", None))[1]
        if default_field:
            names.add(default_field)
    return sample_data(names - BUILTIN_NAMES)
