"""REST routes of flow control: a version's transitions, their conditions, and the branch counts
of a split step. They follow their version's tenant (``write`` changes, ``read`` reads)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from dripdrop.records import Transition
from dripdrop.web.auth import Principal, require
from dripdrop.web.encode import encode
from dripdrop.web.routes.common import Body, dd_of, m, record_by_id
from dripdrop.web.routes.definitions import ConditionIn, step_of
from dripdrop.web.routes.sequences import version

router = APIRouter(tags=["flow"])


class TransitionIn(Body):
    from_step_id: str
    to_step_id: str | None = None
    condition_mode: str = "always"
    priority: int = 0


class TransitionChanges(Body):
    to_step_id: str | None = None
    condition_mode: str | None = None
    priority: int | None = None


def transition_of(request: Request, who: Principal, transition_id: str) -> Transition:
    """The transition, or 404 when it is another tenant's (its version's tenant decides)."""
    found = who.owns(record_by_id(request, m.Transition, Transition, transition_id, "transition"))
    version(request, who, str(found.sequence_version_id))
    return found


@router.get("/versions/{version_id}/transitions")
def list_transitions(version_id: str, request: Request, who: Principal = require("read")) -> Any:
    """A version's transitions, by source step position, then priority."""
    found = version(request, who, version_id)
    return {"items": encode(dd_of(request).list_transitions(found.id)), "next_cursor": None}


@router.post("/versions/{version_id}/transitions", status_code=201)
def create_transition(
    version_id: str, body: TransitionIn, request: Request, who: Principal = require("write")
) -> Any:
    """Add a transition (``to_step_id`` null completes the enrollment)."""
    found = version(request, who, version_id)
    return encode(dd_of(request).create_transition(found.id, **body.model_dump()))


@router.get("/transitions/{transition_id}")
def get_transition(transition_id: str, request: Request, who: Principal = require("read")) -> Any:
    return encode(transition_of(request, who, transition_id))


@router.patch("/transitions/{transition_id}")
def update_transition(
    transition_id: str,
    body: TransitionChanges,
    request: Request,
    who: Principal = require("write"),
) -> Any:
    """Change the target, mode or priority given (the graph is checked again)."""
    found = transition_of(request, who, transition_id)
    changes = body.model_dump(exclude_unset=True)
    return encode(dd_of(request).update_transition(found.id, **changes))


@router.delete("/transitions/{transition_id}", status_code=204)
def delete_transition(
    transition_id: str, request: Request, who: Principal = require("write")
) -> None:
    found = transition_of(request, who, transition_id)
    dd_of(request).delete_transition(found.id)


@router.get("/transitions/{transition_id}/conditions")
def list_transition_conditions(
    transition_id: str, request: Request, who: Principal = require("read")
) -> Any:
    found = transition_of(request, who, transition_id)
    items = dd_of(request).list_conditions(transition_id=found.id)
    return {"items": encode(items), "next_cursor": None}


@router.post("/transitions/{transition_id}/conditions", status_code=201)
def create_transition_condition(
    transition_id: str, body: ConditionIn, request: Request, who: Principal = require("write")
) -> Any:
    """Add a condition to a transition (every condition type, as on steps)."""
    found = transition_of(request, who, transition_id)
    return encode(dd_of(request).create_condition(transition_id=found.id, **body.model_dump()))


@router.get("/steps/{step_id}/branches")
def split_counts(step_id: str, request: Request, who: Principal = require("read")) -> Any:
    """How many enrollments a split step sent down each branch (``holdout`` included)."""
    found = step_of(request, who, step_id)
    return {"items": encode(dd_of(request).split_counts(found.id)), "next_cursor": None}
