"""Sequences: list, create, edit, archive; versions side by side; draft → active."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from dripdrop.errors import ValidationError
from dripdrop.records import Sequence
from dripdrop.web.dashboard.pages.common import (
    Form,
    call,
    redirect,
    router,
    sequence_of,
    tenant,
    version_of,
)
from dripdrop.web.dashboard.render import page

pages = router()
#: Step fields compared between two versions.
COMPARED = ("name", "channel", "timing", "config", "template_type", "active")


async def sequence_by_id(request: Request, sequence_id: Any) -> Sequence:
    """The sequence (NotFound for another tenant's, in a tenant's session)."""
    return await sequence_of(request, sequence_id)


@pages.get("/sequences")
async def sequences(request: Request) -> Response:
    items = await call(request, "list_sequences", tenant_key=tenant(request))
    active = {}
    for seq in items:
        active[seq.id] = await call(request, "get_active_version", seq.id)
    return page(
        request,
        "sequences.html",
        section="sequences",
        items=items,
        active=active,
        form={},
        errors={},
    )


@pages.post("/sequences")
async def create(request: Request) -> Response:
    form = await Form.of(request)
    try:
        seq = await call(
            request,
            "create_sequence",
            name=form.get("name").strip(),
            key=form.get("key").strip(),
            description=form.optional("description"),
            tenant_key=tenant(request),
        )
        version = await call(request, "create_sequence_version", seq.id, active=False)
    except ValidationError as exc:
        items = await call(request, "list_sequences", tenant_key=tenant(request))
        return page(
            request,
            "sequences.html",
            422,
            section="sequences",
            items=items,
            active={},
            form=form.values(),
            errors=exc.errors,
        )
    return redirect(request, f"/versions/{version.id}")


async def _detail(request: Request, seq: Any, status: int = 200, **extra: Any) -> Response:
    versions = await call(request, "list_versions", seq.id)
    context: dict[str, Any] = {"form": {}, "errors": {}}
    context.update(extra)
    return page(
        request, "sequence.html", status, section="sequences", seq=seq, versions=versions, **context
    )


@pages.get("/sequences/{sequence_id}")
async def sequence(request: Request, sequence_id: str) -> Response:
    return await _detail(request, await sequence_by_id(request, sequence_id))


@pages.post("/sequences/{sequence_id}")
async def update(request: Request, sequence_id: str) -> Response:
    seq = await sequence_by_id(request, sequence_id)
    form = await Form.of(request)
    try:
        await call(
            request,
            "update_sequence",
            seq.id,
            name=form.get("name").strip(),
            description=form.optional("description"),
        )
    except ValidationError as exc:
        return await _detail(request, seq, 422, form=form.values(), errors=exc.errors)
    return redirect(request, f"/sequences/{seq.id}")


@pages.post("/sequences/{sequence_id}/archive")
async def archive(request: Request, sequence_id: str) -> Response:
    """Archived: no new enrollments (``active=False``); history and running enrollments stay."""
    seq = await sequence_by_id(request, sequence_id)
    form = await Form.of(request)
    await call(request, "update_sequence", seq.id, active=form.get("active") == "true")
    return redirect(request, f"/sequences/{seq.id}")


@pages.post("/sequences/{sequence_id}/versions")
async def new_version(request: Request, sequence_id: str) -> Response:
    """A new draft, empty or a copy of an existing version's steps and their conditions."""
    seq = await sequence_by_id(request, sequence_id)
    form = await Form.of(request)
    source = None
    if form.optional("copy_from"):
        source = await version_of(request, form.get("copy_from").strip())
        if source.sequence_id != seq.id:
            raise ValidationError.single("copy_from", "choose a version of this sequence")
    draft = await call(request, "create_sequence_version", seq.id, active=False)
    if source is not None:
        for step in await call(request, "list_steps", source.id):
            copy = await call(
                request,
                "create_step",
                draft.id,
                name=step.name,
                key=step.key,
                position=step.position,
                channel=step.channel,
                timing=step.timing,
                config=step.config,
                template_type=step.template_type,
                template_content=step.template_content,
                template_module=step.template_module,
                template_function=step.template_function,
                channel_adapter_id=step.channel_adapter_id,
                active=step.active,
            )
            for cond in await call(request, "list_conditions", step.id):
                await call(
                    request,
                    "create_condition",
                    copy.id,
                    condition_type=cond.condition_type,
                    field_path=cond.field_path,
                    operator=cond.operator,
                    expected_value=cond.expected_value,
                    hook_function=cond.hook_function,
                    http_hook_id=cond.http_hook_id,
                    config=cond.config or None,
                )
    return redirect(request, f"/versions/{draft.id}")


def _diff(left: list[Any], right: list[Any]) -> list[dict[str, Any]]:
    """Rows of a side-by-side diff, one per step key in order of either version."""
    by_key_left = {s.key: s for s in left}
    by_key_right = {s.key: s for s in right}
    keys = [s.key for s in left] + [s.key for s in right if s.key not in by_key_left]
    rows = []
    for key in keys:
        a, b = by_key_left.get(key), by_key_right.get(key)
        changed = {f for f in COMPARED if a and b and getattr(a, f) != getattr(b, f)}
        if a and b and a.position != b.position:
            changed.add("position")
        status = (
            "added" if a is None else "removed" if b is None else ("changed" if changed else "same")
        )
        rows.append({"key": key, "left": a, "right": b, "changed": changed, "status": status})
    return rows


@pages.get("/sequences/{sequence_id}/compare")
async def compare(request: Request, sequence_id: str) -> Response:
    seq = await sequence_by_id(request, sequence_id)
    versions = await call(request, "list_versions", seq.id)
    by_id = {str(v.id): v for v in versions}
    left = by_id.get(request.query_params.get("a", ""))
    right = by_id.get(request.query_params.get("b", ""))
    if left is None or right is None:
        raise ValidationError.single("a", "choose two versions of this sequence to compare")
    rows = _diff(
        await call(request, "list_steps", left.id), await call(request, "list_steps", right.id)
    )
    return page(
        request,
        "compare.html",
        section="sequences",
        seq=seq,
        left=left,
        right=right,
        rows=rows,
        versions=versions,
    )
