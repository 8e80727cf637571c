"""Validation and normalisation of a step's ``timing`` dict (shapes in docs/timing.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from dripdrop.definitions.inputs import (
    MAX_ID_LENGTH,
    describe,
    json_message,
    json_problem,
    unknown_keys,
)
from dripdrop.errors import ValidationError
from dripdrop.timing.cron import load_zone, to_cron
from dripdrop.timing.human import HumanTiming, parse_human

__all__ = ["TYPES", "UNITS", "normalize_timing", "unit_of"]

TYPES = ("immediate", "delay", "cron", "event")
UNITS = ("minutes", "hours", "days", "weeks")
RELATIVE_TO = ("enrollment_start", "previous_step")
# Beyond a century a delay is surely a typo, and datetimes would overflow soon after.
MAX_DELAY = timedelta(days=36_525)
# A timing is a handful of fields; trigger_data is the only part that may grow.
MAX_TIMING_SIZE = 100_000
# Fields whose own checks accept any value safely and say more than the generic JSON check
# would ("at most 100 years" rather than "outside the 64-bit range").
_OWN_CHECKS = ("delay_amount", "timeout_amount", "human_expression", "cron_expression")

_FIELDS = {
    "immediate": {"type"},
    "delay": {"type", "delay_amount", "delay_unit", "relative_to", "human_expression"},
    "cron": {"type", "cron_expression", "timezone", "human_expression"},
    "event": {"type", "trigger_event", "trigger_data", "timeout_amount", "timeout_unit"},
}
# Without "type", a distinctive key says which shape was meant.
_INFER = (("cron_expression", "cron"), ("delay_amount", "delay"), ("trigger_event", "event"))


def unit_of(value: Any) -> str | None:
    """Return the canonical unit ("days") for "days", "Day" …, or None if unknown."""
    if not isinstance(value, str):
        return None
    unit = value.strip().lower()
    unit = unit if unit.endswith("s") else unit + "s"
    return unit if unit in UNITS else None


class _Errors:
    """Collects every problem before raising, so users fix them all in one go."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, key: str, message: str) -> None:
        # Keys come from the user: a stray megabyte key must not become the field name.
        self.errors.setdefault(f"timing.{key[:64]}", []).append(message)

    def merge(self, exc: ValidationError) -> None:
        for key, messages in exc.errors.items():
            for message in messages:
                self.add(key, message)


def _too_long(amount: int, unit: str) -> bool:
    # Compared in units, not as a timedelta: timedelta(days=2**70) itself overflows.
    return amount > MAX_DELAY // timedelta(**{unit: 1})


def _amount(t: dict, amount_key: str, unit_key: str, errs: _Errors) -> tuple[int, str] | None:
    amount, unit = t.get(amount_key), unit_of(t.get(unit_key))
    ok = True
    # bool is an int subclass, but True days is surely a mistake.
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
        errs.add(amount_key, "must be a positive integer")
        ok = False
    if unit is None:
        errs.add(unit_key, f"must be one of {', '.join(UNITS)}")
        ok = False
    if ok and _too_long(amount, unit):  # type: ignore[arg-type]
        errs.add(amount_key, "is too large (at most 100 years)")
        ok = False
    return (amount, unit) if ok else None  # type: ignore[return-value]


def _delay_phrase(human: Any, errs: _Errors) -> HumanTiming | None:
    try:
        parsed = parse_human(human)
    except ValidationError as exc:
        errs.merge(exc)
        return None
    if parsed.kind != "delay":
        errs.add("human_expression", f"{describe(human)} is a recurring schedule, not a delay")
        return None
    if _too_long(parsed.amount, parsed.unit):  # type: ignore[arg-type]
        errs.add("human_expression", "is too large (at most 100 years)")
        return None
    return parsed


def _delay(t: dict, out: dict, errs: _Errors) -> None:
    human = t.get("human_expression")
    parsed = _delay_phrase(human, errs) if human is not None else None
    if parsed:
        out["human_expression"] = human
    # Explicit amounts are required without a phrase, and checked against it with one.
    if human is None or "delay_amount" in t or "delay_unit" in t:
        if pair := _amount(t, "delay_amount", "delay_unit", errs):
            out["delay_amount"], out["delay_unit"] = pair
            if parsed and pair != (parsed.amount, parsed.unit):
                errs.add(
                    "human_expression",
                    f"{describe(human)} disagrees with delay_amount/delay_unit",
                )
    elif parsed:
        out["delay_amount"], out["delay_unit"] = parsed.amount, parsed.unit
    relative = t.get("relative_to", "enrollment_start")
    if relative not in RELATIVE_TO:
        errs.add("relative_to", f"must be one of {', '.join(RELATIVE_TO)}")
    out["relative_to"] = relative


def _cron(t: dict, out: dict, errs: _Errors) -> None:
    zone = t.get("timezone", "UTC")
    try:
        load_zone(zone)
        out["timezone"] = zone
    except ValidationError as exc:
        errs.merge(exc)
    expr, human = t.get("cron_expression"), t.get("human_expression")
    if expr is None and human is None:
        errs.add("cron_expression", "required (cron, @daily … or a phrase like 'every day at 9am')")
        return
    try:
        cron = to_cron(expr) if expr is not None else None
        from_human = to_cron(human, "human_expression") if human is not None else None
    except ValidationError as exc:
        errs.merge(exc)
        return
    if cron and from_human and cron != from_human:
        errs.add(
            "human_expression",
            f"{describe(human)} disagrees with cron_expression {describe(expr)}",
        )
        return
    out["cron_expression"] = cron or from_human
    # Keep what the user wrote when it was not already plain cron.
    original = human if human is not None else expr
    if " ".join(original.split()).upper() != out["cron_expression"]:
        out["human_expression"] = original


def _event(t: dict, out: dict, errs: _Errors) -> None:
    name = t.get("trigger_event")
    if not isinstance(name, str) or not name.strip():
        errs.add("trigger_event", "required: the event key that triggers this step")
    elif len(name.strip()) > MAX_ID_LENGTH:
        errs.add("trigger_event", f"is too long (at most {MAX_ID_LENGTH} characters)")
    else:
        out["trigger_event"] = name.strip()
    data = t.get("trigger_data")
    if data is not None and not (isinstance(data, dict) and all(isinstance(k, str) for k in data)):
        errs.add("trigger_data", "must be an object with string keys")
    elif data:
        out["trigger_data"] = data
    has_amount, has_unit = t.get("timeout_amount") is not None, t.get("timeout_unit") is not None
    if has_amount != has_unit:
        missing = "timeout_unit" if has_amount else "timeout_amount"
        errs.add(missing, "timeout_amount and timeout_unit go together")
    elif has_amount and (pair := _amount(t, "timeout_amount", "timeout_unit", errs)):
        out["timeout_amount"], out["timeout_unit"] = pair


_SHAPES: dict[str, Callable[[dict, dict, _Errors], None]] = {
    "delay": _delay,
    "cron": _cron,
    "event": _event,
}


def _infer_type(t: dict, errs: _Errors) -> str | None:
    if "human_expression" in t:
        try:
            return "delay" if parse_human(t["human_expression"]).kind == "delay" else "cron"
        except ValidationError as exc:
            errs.merge(exc)
            return None
    for key, kind in _INFER:
        if key in t:
            return kind
    errs.add("type", f"required: one of {', '.join(TYPES)}")
    return None


def normalize_timing(timing: dict | None) -> dict:
    """Validate a step's timing and return its normalised, JSON-able form.

    ``None`` and ``{}`` mean immediate. Raises :class:`ValidationError` whose
    ``errors`` keys are prefixed ``timing.``, with every problem found.
    """
    if timing is None or timing == {}:
        return {"type": "immediate"}
    if not isinstance(timing, dict):
        raise ValidationError.single("timing", "must be an object")
    # NaN, NUL, deep nesting or odd keys would otherwise reach the parsers or PostgreSQL.
    rest = {k: v for k, v in timing.items() if k not in _OWN_CHECKS}
    if found := json_problem(rest, max_size=MAX_TIMING_SIZE):
        path, problem = found
        # Reported on the timing field at fault (timing.trigger_data), as the shape checks do.
        top, _, inner = path.partition(".")
        field = f"timing.{top}" if top else "timing"
        raise ValidationError.single(field, json_message(field, inner, problem))
    errs = _Errors()
    kind = timing.get("type")
    if kind is None:
        kind = _infer_type(timing, errs)
    elif kind not in TYPES:
        errs.add("type", f"unknown type {describe(kind)}: must be one of {', '.join(TYPES)}")
        kind = None
    out: dict[str, Any] = {}
    if kind is not None:
        out["type"] = kind
        for key, messages in unknown_keys(timing, _FIELDS[kind], "").items():
            errs.add(key, f"{messages[0]} ({kind!r} timing)")
        if kind in _SHAPES:
            _SHAPES[kind](timing, out, errs)
    if errs.errors:
        raise ValidationError(errs.errors)
    return out
