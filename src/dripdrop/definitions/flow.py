"""Checking flow control definitions: the settings of split, recurring and digest steps, a
version's goal, the throttle condition, and the version's graph (every step reachable, no loop
that can repeat without waiting).

A step's edges are its transitions (to a step, or to the end), its split branches, and the next
position when no transition is unconditional — exactly what ``engine/flow.py`` may take at run
time. A step *waits* when its timing is cron, an event, or a delay relative to the previous
step, or when it is a digest gathering over a window: a loop through one of them cannot spin.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from dripdrop.definitions.inputs import (
    MAX_ID_LENGTH,
    Errors,
    add,
    check_identifier,
    describe,
    gather,
    unknown_keys,
)
from dripdrop.engine.defs import StepDef, VersionDef
from dripdrop.timing.spec import UNITS

#: The channel of a step that only chooses a branch (it delivers nothing).
SPLIT = "split"
CONDITION_MODES = ("always", "all", "any")
MAX_BRANCHES = 20
MAX_TIMES = 10_000


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _window(config: dict[str, Any], field: str, errors: Errors) -> None:
    amount = config.get("window_amount", 1)
    if not _whole(amount, 1, 100_000):
        add(errors, f"{field}.window_amount", "must be an integer from 1 to 100000")
    if config.get("window_unit", "days") not in UNITS:
        add(errors, f"{field}.window_unit", f"must be one of {', '.join(UNITS)}")


def check_split(config: dict[str, Any], errors: Errors) -> None:
    """``config["split"] = {"branches": [{"name", "weight", "to"}], "holdout": weight}``; ``to``
    names a step key of the version (None: the next position)."""
    split = config.get("split")
    field = "config.split"
    if not isinstance(split, dict):
        add(errors, field, "a split step needs config={'split': {'branches': [...]}}")
        return
    errors.update(unknown_keys(split, {"branches", "holdout"}, field))
    branches = split.get("branches")
    if not isinstance(branches, list) or not 1 <= len(branches) <= MAX_BRANCHES:
        add(errors, f"{field}.branches", f"must be a list of 1 to {MAX_BRANCHES} branches")
        return
    names: set[str] = set()
    for i, b in enumerate(branches):
        at = f"{field}.branches[{i}]"
        if not isinstance(b, dict):
            add(errors, at, "must be a dict with name, weight and to")
            continue
        errors.update(unknown_keys(b, {"name", "weight", "to"}, at))
        name = b.get("name")
        if not isinstance(name, str) or not name or len(name) > MAX_ID_LENGTH:
            add(errors, f"{at}.name", f"must be a name of 1 to {MAX_ID_LENGTH} characters")
        elif name == "holdout" or name in names:
            add(
                errors,
                f"{at}.name",
                f"{describe(name)} is taken (names are unique; 'holdout' is the control group)",
            )
        else:
            names.add(name)
        if not _positive(b.get("weight")):
            add(errors, f"{at}.weight", "must be a number above 0")
        to = b.get("to")
        if to is not None and (not isinstance(to, str) or not to or len(to) > 200):
            add(errors, f"{at}.to", "must be a step key of this version (or None: next position)")
    holdout = split.get("holdout")
    if holdout is not None and not (holdout == 0 or _positive(holdout)):
        add(errors, f"{field}.holdout", "must be a weight of 0 or more (the control group)")


def _positive(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 < value <= 1_000_000
        and value == value
    )


def check_repeat(config: dict[str, Any], timing: dict[str, Any], errors: Errors) -> None:
    """``config["repeat"] = {"times": N}`` / ``{"until_event": key}`` / ``{}`` (until the
    enrollment ends), on a cron step."""
    repeat = config.get("repeat")
    if repeat is None or repeat is False:
        return
    field = "config.repeat"
    if repeat is True:
        repeat = {}
    if not isinstance(repeat, dict):
        add(errors, field, "must be a dict: {'times': N} or {'until_event': key} or {}")
        return
    errors.update(unknown_keys(repeat, {"times", "until_event"}, field))
    if "times" in repeat and not _whole(repeat["times"], 1, MAX_TIMES):
        add(errors, f"{field}.times", f"must be an integer from 1 to {MAX_TIMES}")
    if "until_event" in repeat:
        gather(errors, check_identifier, repeat["until_event"], f"{field}.until_event")
    if timing.get("type") != "cron":
        add(errors, field, "a recurring step needs cron timing (its own schedule)")


def check_digest(config: dict[str, Any], errors: Errors) -> None:
    """``config["digest"] = {"event_key", "window_amount", "window_unit", "max_events"}``."""
    digest = config.get("digest")
    if digest is None:
        return
    field = "config.digest"
    if not isinstance(digest, dict):
        add(errors, field, "must be a dict with event_key and a window")
        return
    errors.update(
        unknown_keys(digest, {"event_key", "window_amount", "window_unit", "max_events"}, field)
    )
    if digest.get("event_key") in (None, ""):
        add(errors, f"{field}.event_key", "is required: the event key to gather")
    else:
        gather(errors, check_identifier, digest["event_key"], f"{field}.event_key")
    _window(digest, field, errors)
    if "max_events" in digest and not _whole(digest["max_events"], 1, 10_000):
        add(errors, f"{field}.max_events", "must be an integer from 1 to 10000")


def check_flow_settings(
    channel: Any, config: dict[str, Any], timing: dict[str, Any], errors: Errors
) -> None:
    """The flow settings of a step's config (split, repeat, digest)."""
    if channel == SPLIT:
        check_split(config, errors)
    elif "split" in config:
        add(errors, "config.split", "only a step with channel='split' splits")
    check_repeat(config, timing, errors)
    check_digest(config, errors)
    if channel == SPLIT and (config.get("repeat") or config.get("digest")):
        add(errors, "config", "a split step can neither repeat nor digest")


def check_throttle(config: Any, errors: Errors) -> None:
    """A throttle condition: ``config={"max_sends": N, "window_amount": 1, "window_unit":
    "days"}``: at most N sends of the guarded step per subscriber per window."""
    if not isinstance(config, dict):
        add(errors, "config", "a throttle condition needs config={'max_sends': N, ...}")
        return
    if not _whole(config.get("max_sends"), 1, 100_000):
        add(errors, "config.max_sends", "must be an integer from 1 to 100000")
    _window(config, "config", errors)


def check_goal(goal: Any, errors: Errors) -> None:
    """A version's ``config["goal"] = {"event_key", "trigger_data", "continue"}``."""
    if goal is None:
        return
    field = "config.goal"
    if not isinstance(goal, dict):
        add(errors, field, "must be a dict: {'event_key': ..., 'trigger_data': {...}}")
        return
    errors.update(unknown_keys(goal, {"event_key", "trigger_data", "continue"}, field))
    if goal.get("event_key") in (None, ""):
        add(errors, f"{field}.event_key", "is required: the event that reaches the goal")
    else:
        gather(errors, check_identifier, goal["event_key"], f"{field}.event_key")
    if not isinstance(goal.get("trigger_data", {}), dict):
        add(errors, f"{field}.trigger_data", "must be a dict to match the event's data")
    if not isinstance(goal.get("continue", False), bool):
        add(errors, f"{field}.continue", "must be true or false")


# -- the graph --------------------------------------------------------------------------------

Edge = tuple[uuid.UUID, uuid.UUID | None]  # (from step, to step or None: the end)


def waits(step: StepDef) -> bool:
    """Does reaching this step wait for time or an event (so a loop through it cannot spin)?"""
    t = step.timing
    kind = t.get("type")
    if step.config.get("repeat") not in (None, False):
        return False  # its chain execution is due at once
    if kind in ("cron", "event"):
        return True
    if kind == "delay":
        return t.get("relative_to") == "previous_step" and t.get("delay_amount", 0) > 0
    return bool(step.config.get("digest")) and kind == "immediate"


def edges(version: VersionDef, extra: Iterable[Edge] = ()) -> dict[uuid.UUID, set[Any]]:
    """Where each step may go next (a step id, or None for the end)."""
    out: dict[uuid.UUID, set[Any]] = {s.id: set() for s in version.steps}
    by_key = {s.key: s for s in version.steps}
    added: dict[uuid.UUID, list[Any]] = {}
    for a, b in extra:
        added.setdefault(a, []).append(b)
    for s in version.steps:
        if s.channel == SPLIT:
            split = s.config.get("split") or {}
            for b in split.get("branches") or ():
                target = by_key.get(b.get("to")) if b.get("to") else None
                nxt = target or version.step_after(s.id)
                out[s.id].add(nxt.id if nxt else None)
            if split.get("holdout"):
                out[s.id].add(None)
            continue
        ts = version.transitions_from(s.id)
        for t in ts:
            out[s.id].add(t.to_step_id)
        for b in added.get(s.id, ()):
            out[s.id].add(b)
        unconditional = any(t.condition_mode == "always" or not t.conditions for t in ts)
        if not unconditional:
            nxt = version.step_after(s.id)
            out[s.id].add(nxt.id if nxt else None)
    return out


def waitless_cycle(version: VersionDef, extra: Iterable[Edge] = ()) -> list[str] | None:
    """The step keys of a loop that passes no waiting step, or None."""
    graph = edges(version, extra)
    spinning = {s.id for s in version.steps if not waits(s)}
    state: dict[uuid.UUID, int] = {}  # 1: on the path, 2: done
    path: list[uuid.UUID] = []

    def visit(node: uuid.UUID) -> list[uuid.UUID] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, ()):
            if nxt is None or nxt not in spinning:
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for s in version.steps:
        if s.id in spinning and s.id not in state:
            found = visit(s.id)
            if found:
                return [version.step(i).key for i in found]  # type: ignore[union-attr]
    return None


def unreachable(version: VersionDef) -> list[StepDef]:
    """Active steps no path from the first step reaches."""
    first = version.first_step()
    if first is None:
        return []
    graph = edges(version)
    seen = {first.id}
    todo = [first.id]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return [s for s in version.steps if s.active and s.id not in seen]


def graph_problems(version: VersionDef) -> list[tuple[StepDef, str, str]]:
    """(step, field, message) for every flow problem of the version (checked at activation)."""
    found: list[tuple[StepDef, str, str]] = []
    keys = {s.key for s in version.steps}
    for s in version.steps:
        if s.channel == SPLIT:
            for i, b in enumerate((s.config.get("split") or {}).get("branches") or ()):
                if b.get("to") and b["to"] not in keys:
                    found.append(
                        (
                            s,
                            f"config.split.branches[{i}].to",
                            f"no step {b['to']!r} in this version",
                        )
                    )
    cycle = waitless_cycle(version)
    if cycle:
        step = next(s for s in version.steps if s.key == cycle[0])
        found.append((step, "transitions", loop_message(cycle)))
    for s in unreachable(version):
        found.append((s, "position", "no path from the first step reaches this step"))
    return found


def loop_message(cycle: list[str]) -> str:
    return (
        f"the loop {' → '.join(cycle)} passes no delay, cron or event step: it would repeat "
        "without waiting (add a step that waits: a delay relative to the previous step, a cron "
        "or an event)"
    )
